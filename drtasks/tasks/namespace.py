"""The invoke namespace: every task at top level (`inv upload`, `inv car-zip`, ...)."""

from __future__ import annotations

import importlib

from invoke import Collection

# Modules of tasks, grouped by concern; each defines `namespace`.
TASK_MODULES = (
    "drtasks.tasks.config_tasks",
    "drtasks.tasks.local_tasks",
    "drtasks.tasks.upload_tasks",
    "drtasks.tasks.carzip_tasks",
    "drtasks.tasks.car_tasks",
    "drtasks.tasks.import_tasks",
    "drtasks.tasks.model_tasks",
    "drtasks.tasks.ship_tasks",
    "drtasks.tasks.backup_tasks",
)


def build() -> Collection:
    from drtasks.secrets import install_log_redaction

    install_log_redaction()  # before invoke's --debug can turn any logging on
    namespace = Collection()
    for name in TASK_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name == name:
                continue  # a concern not built yet
            raise
        for task in module.namespace.tasks.values():
            namespace.add_task(task)
    return namespace
