"""invoke entry point: `inv --list` shows the tasks; all logic lives in the drtasks package."""

from drtasks.tasks.namespace import build

ns = build()
