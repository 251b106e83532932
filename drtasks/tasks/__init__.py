"""invoke tasks, one module per concern; `drtasks.tasks.namespace` assembles them."""
