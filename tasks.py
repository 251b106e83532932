"""invoke entry point: `inv --list` shows the tasks; all logic lives in the drtasks package."""

from drtasks.startup import pause_collection
from drtasks.tasks.namespace import build

pause_collection()  # a short command: collect garbage once the heavy imports are done
ns = build()
