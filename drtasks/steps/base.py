"""What every step plan is: rows to show, a summary, JSON, what it reads and deletes, and apply."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from drtasks.config.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from drtasks.plan import Input
    from drtasks.s3 import S3Location
    from drtasks.steps.source import SourceReads
    from drtasks.transfer import Check, Progress


@dataclass(frozen=True)
class Row:
    """One line of a plan table."""

    action: str  # add | replace | unchanged | delete | abort | write | edit | call | check
    what: str
    source_size: int | None = None
    target_size: int | None = None
    reason: str = ""
    count: int = 1  # rows standing for several objects of one folder and action


@dataclass
class StepContext:
    """What a planner gets: the resolved settings, its own options, and the steps planned before it."""

    settings: Settings
    options: Any
    prior: list["StepPlan"]
    reads: "SourceReads"

    def last(self, kind: type["StepPlanT"]) -> "StepPlanT | None":
        found = [plan for plan in self.prior if isinstance(plan, kind)]
        return found[-1] if found else None


@dataclass
class Runtime:
    """What applying needs from the task: where to talk, how to show progress, whether to ask."""

    out: "Console"
    progress: Callable[["Console"], Any]  # a context manager factory yielding a transfer Progress
    force: bool = False
    wait: bool = False


@dataclass
class StepResult:
    step: str
    status: str  # done | failed | skipped | not run
    detail: str = ""
    checks: list["Check"] = field(default_factory=list)
    code: int = 0
    where: str = ""  # what the checks are about (a target URL)
    report: Any = None  # a table of its own to show (car-push: a row per car)  # the exit code a failure asks for (130 after an interrupt)


class StepPlan(ABC):
    step: ClassVar[str]
    notes: list[str]

    @abstractmethod
    def heading(self) -> str:
        """One line: what this step does, from where to where."""

    @abstractmethod
    def rows(self) -> list[Row]: ...

    @abstractmethod
    def summary(self) -> dict[str, Any]: ...

    @abstractmethod
    def summary_line(self) -> str: ...

    @abstractmethod
    def as_dict(self) -> dict[str, Any]: ...

    @property
    @abstractmethod
    def changes(self) -> bool: ...

    @abstractmethod
    def apply(self, runtime: Runtime) -> StepResult: ...

    def overrides_after(self) -> dict[str, tuple[str, str]]:
        """DR_* values (with their origin) that the steps after this one plan with.

        An increment returns the new upload prefix; the chain then resolves the settings again,
        so values that refer to it follow too.
        """
        return {}

    def inputs(self) -> list["Input"]:
        """What this step reads from S3 (a later or earlier wipe must not delete it)."""
        return []

    def deletions(self) -> list[tuple["S3Location", str]]:
        """(location, full key) of every object this step deletes."""
        return []

    def close(self) -> None:
        """Let go of what planning opened (sessions to a car); called once the chain is done."""


StepPlanT = Any  # a StepPlan subclass, for StepContext.last
