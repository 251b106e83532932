"""Step planners: each step turns settings into a plan value; applying it is a separate call.

A chain (``drtasks.chain``) plans every step first, checks them against each other, shows them
as one table, asks once and then applies them in order. Steps never call each other: a later step
sees the earlier ones' plans through its context (the import uses the upload's target, the upload
after an increment plans against the new prefix).
"""
