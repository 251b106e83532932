"""Steps on the racer's DRoA models: delete one, download one of its assets, submit one to a league.

Each names its model by id or name (``drtasks.importing.droa_names``), decides at planning what DRoA
would refuse (a model DRoA cannot delete now, a closed leaderboard, no submissions left), and acts
in apply. The submit step takes the model the import step of the same chain imports (its id is
known once that import ran) or, without one, the model the settings name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from drtasks.errors import DrtasksError
from drtasks.importing import flow
from drtasks.importing.droa_names import resolve_leaderboard, resolve_model
from drtasks.steps.base import Row, Runtime, StepContext, StepPlan, StepResult
from drtasks.units import human

DELETABLE = ("READY", "ERROR")
# DRoA's deleteModel answer for any other status.
NOT_DELETABLE = "This resource cannot be deleted at this time. Try again later."


def _session(context: StepContext) -> Any:
    """The racer's session: the one an earlier step of the chain signed in with, else a new sign-in."""
    from drtasks.importing import droa_flow

    for plan in reversed(context.prior):
        session = getattr(plan, "session", None)
        if session is not None and hasattr(session, "api"):
            return session
    return droa_flow.sign_in(context.settings)


def _created(model: dict[str, Any]) -> str:
    return str(model.get("createdAt") or "")[:16].replace("T", " ")


def _label(model: dict[str, Any]) -> str:
    return f"'{model.get('name')}' ({model.get('modelId')})"


# ---------------------------------------------------------------------------- delete


@dataclass(frozen=True)
class DeleteOptions:
    model: str  # id or name


@dataclass
class DeleteModelPlan(StepPlan):
    step = "delete-model"
    settings: Any
    session: Any
    model: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.model.get("name"))

    @property
    def model_id(self) -> str:
        return str(self.model.get("modelId"))

    def heading(self) -> str:
        return f"in DeepRacer on AWS ({self.session.deployment.url}, {self.session.username})"

    def rows(self) -> list[Row]:
        reason = f"id {self.model_id}, {self.model.get('status')}, created {_created(self.model)}; its files, evaluations and training records go too"
        return [Row("delete", f"model '{self.name}'", target_size=self.model.get("fileSizeInBytes"), reason=reason)]

    def summary(self) -> dict[str, Any]:
        return {"delete": 1, "model": self.name, "id": self.model_id}

    def summary_line(self) -> str:
        return f"One DRoA call deletes model {_label(self.model)}; DRoA then removes it in the background (DELETING)."

    def as_dict(self) -> dict[str, Any]:
        from drtasks.importing.droa_assets import without_signatures

        return {"step": self.step, "site": self.session.deployment.url, "model": without_signatures(self.model), "summary": self.summary()}

    @property
    def changes(self) -> bool:
        return True

    def typed_confirmation(self) -> str | None:
        return self.name

    def apply(self, runtime: Runtime) -> StepResult:
        api = self.session.api()
        api.delete_model(self.model_id)
        detail = f"DRoA accepted the deletion of model {_label(self.model)}: it is DELETING"
        if runtime.wait:
            from drtasks.importing.droa import wait_until_gone
            from drtasks.progress import status_reporter

            with status_reporter(runtime.out, f"DRoA model '{self.name}'") as report:
                wait_until_gone(api, self.model_id, on_status=report, poll_seconds=flow.poll_seconds(self.settings))
            detail = f"DRoA model {_label(self.model)} is deleted"
        return StepResult(self.step, "done", detail)


def plan_delete_step(context: StepContext) -> DeleteModelPlan:
    options: DeleteOptions = context.options
    session = _session(context)
    model = resolve_model(session.api(), options.model)
    status = str(model.get("status"))
    if status not in DELETABLE:
        raise DrtasksError(
            f"DRoA model {_label(model)} is {status}: {NOT_DELETABLE} (DRoA deletes only READY or ERROR models); nothing was deleted"
        )
    return DeleteModelPlan(context.settings, session, model)


# ---------------------------------------------------------------------------- download


@dataclass(frozen=True)
class DownloadOptions:
    model: str  # id or name
    asset: str = "TRAINING_LOGS"
    evaluation_id: str | None = None
    output: str | None = None  # a file, or a folder for DRoA's own file name; default: that name here


@dataclass
class DownloadAssetPlan(StepPlan):
    step = "download-asset"
    settings: Any
    session: Any
    model: dict[str, Any]
    asset: str
    evaluation_id: str | None
    path: Path
    exists: bool
    notes: list[str] = field(default_factory=list)

    def heading(self) -> str:
        evaluation = f" (evaluation {self.evaluation_id})" if self.evaluation_id else ""
        return f"{self.asset}{evaluation} of DRoA model {_label(self.model)}"

    def rows(self) -> list[Row]:
        packaged = "; DRoA packages it first (QUEUED until ready)" if self.asset == "VIRTUAL_MODEL" else ""
        if self.exists:
            return [Row("replace", str(self.path), reason=f"the file exists; written as {self.path.name}.part, renamed once proven{packaged}")]
        return [Row("write", str(self.path), reason=f"new file; written as {self.path.name}.part, renamed once proven{packaged}")]

    def summary(self) -> dict[str, Any]:
        return {"asset": self.asset, "model": self.model.get("modelId"), "path": str(self.path), "replace": self.exists}

    def summary_line(self) -> str:
        return f"One download: {self.asset} of model {_label(self.model)} to {self.path}, checked against the size and checksum S3 answers with."

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "site": self.session.deployment.url, "model_name": self.model.get("name"),
                "evaluation_id": self.evaluation_id, **self.summary()}

    @property
    def changes(self) -> bool:
        return True

    def apply(self, runtime: Runtime) -> StepResult:
        from drtasks.importing.droa_assets import asset_url, download
        from drtasks.progress import status_reporter

        api = self.session.api()
        with status_reporter(runtime.out, f"{self.asset} of DRoA model '{self.model.get('name')}'") as report:
            url = asset_url(api, self.model, self.asset, self.evaluation_id, on_status=report, poll_seconds=flow.poll_seconds(self.settings))
        name = self.path.name
        with runtime.progress(runtime.out) as progress:
            started: list[bool] = []

            def advanced(count: int, total: int | None) -> None:
                if not started:
                    started.append(True)
                    progress.started(total or 0, 1)
                progress.advanced(name, count)

            done = download(url, self.path, f"{self.asset} of model {_label(self.model)}", advanced)
            progress.finished_object(name)
        return StepResult(self.step, "done", f"wrote {done.path} ({human(done.size)}; {done.proof}; sha256 {done.sha256})", where=str(done.path))


def plan_download_step(context: StepContext) -> DownloadAssetPlan:
    from drtasks.importing.droa_assets import check_request, default_file_name

    options: DownloadOptions = context.options
    check_request(options.asset, options.evaluation_id)
    session = _session(context)
    api = session.api()
    model = resolve_model(api, options.model)
    url = None
    if options.asset != "VIRTUAL_MODEL":
        # Asked now so that what DRoA refuses (no such asset, logs of a job still running) is said
        # before anything is written; the link is asked for again right before the download.
        from drtasks.importing.droa_assets import asset_url

        url = asset_url(api, model, options.asset, options.evaluation_id, timeout=0)
    name = default_file_name(model, options.asset, url)
    path = _output_path(options.output, name)
    if path.is_dir():
        raise DrtasksError(f"--output {path}: a folder is in the way of the file")
    return DownloadAssetPlan(context.settings, session, model, options.asset, options.evaluation_id, path, path.exists())


def _output_path(output: str | None, name: str) -> Path:
    if not output:
        return Path.cwd() / name
    path = Path(output).expanduser()
    if output.endswith(("/", "\\")) or path.is_dir():
        return path / name
    return path


# ---------------------------------------------------------------------------- submit


@dataclass(frozen=True)
class SubmitOptions:
    model: str | None = None  # id or name; None: the model the import step imports, else DR_IMPORT_NAME
    leaderboard: str | None = None  # id or name; None: DR_DROA_LEADERBOARD


def _moment(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class SubmitPlan(StepPlan):
    step = "submit"
    settings: Any
    session: Any
    board: dict[str, Any]
    model: dict[str, Any] | None  # None: the model the import step of this chain imports
    importing: Any  # the chain's DroaImportPlan, when the model comes from it
    used: int  # the racer's submissions to this board so far
    notes: list[str] = field(default_factory=list)
    submission: dict[str, Any] | None = None  # set by apply

    @property
    def model_name(self) -> str:
        return str(self.model.get("name")) if self.model else str(self.importing.request.name)

    def heading(self) -> str:
        track = self.board.get("trackConfig") or {}
        return (
            f"to DRoA leaderboard '{self.board.get('name')}' ({self.board.get('leaderboardId')}; {track.get('trackId')} "
            f"{str(track.get('trackDirection', '')).lower().replace('_', '-')}, {self.board.get('timingMethod', '').lower().replace('_', ' ')}, "
            f"closes {str(self.board.get('closeTime', ''))[:16].replace('T', ' ')})"
        )

    def rows(self) -> list[Row]:
        which = f"model {_label(self.model)}" if self.model else f"the model imported above as '{self.model_name}'"
        ready = "" if self.model and self.model.get("status") == "READY" else ", once it is READY"
        reason = f"submit {which}{ready}; submission {self.used + 1} of {self.board.get('maxSubmissionsPerUser')}"
        return [Row("call", f"POST /leaderboards/{self.board.get('leaderboardId')}/submissions", reason=reason)]

    def summary(self) -> dict[str, Any]:
        return {"leaderboard": self.board.get("leaderboardId"), "model": (self.model or {}).get("modelId"), "submission": self.used + 1}

    def summary_line(self) -> str:
        return f"One DRoA call submits '{self.model_name}' to '{self.board.get('name')}' (submission {self.used + 1} of {self.board.get('maxSubmissionsPerUser')})."

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "site": self.session.deployment.url, "leaderboard": self.board, "model_name": self.model_name,
                "model_id": (self.model or {}).get("modelId"), "submission": self.used + 1}

    @property
    def changes(self) -> bool:
        return True

    def _model_id(self) -> str:
        if self.model is not None:
            return str(self.model.get("modelId"))
        model_id = getattr(self.importing, "model_id", None)
        if not model_id:
            raise DrtasksError("the import step gave no model id, so there is nothing to submit")
        return str(model_id)

    def apply(self, runtime: Runtime) -> StepResult:
        from drtasks.importing.droa import wait_for_model
        from drtasks.progress import status_reporter

        api = self.session.api()
        model_id = self._model_id()
        poll = flow.poll_seconds(self.settings)
        with status_reporter(runtime.out, f"DRoA model '{self.model_name}'") as report:
            wait_for_model(api, model_id, on_status=lambda status, _model: report(status), poll_seconds=poll)
        board_id = str(self.board.get("leaderboardId"))
        api.create_submission(board_id, model_id)
        number = self.used + 1
        detail = f"submitted '{self.model_name}' ({model_id}) to '{self.board.get('name')}': submission {number}, QUEUED to race"
        if runtime.wait:
            from drtasks.importing.droa import wait_for_submission

            with status_reporter(runtime.out, f"submission {number} to '{self.board.get('name')}'") as report:
                self.submission = wait_for_submission(api, board_id, number, on_status=report, poll_seconds=poll)
            detail = raced_line(self.submission, api.get_ranking(board_id), str(self.board.get("name")))
        return StepResult(self.step, "done", detail)


def raced_line(submission: dict[str, Any], ranking: dict[str, Any] | None, board: str) -> str:
    stats = submission.get("stats") or {}
    best = stats.get("bestLapTime")
    laps = stats.get("completedLapCount")
    line = f"submission {submission.get('submissionNumber')} of '{submission.get('modelName')}' {str(submission.get('status')).lower()}"
    if best:
        line += f": best lap {best / 1000:.3f} s over {laps} completed lap(s)"
    if ranking:
        line += f"; your rank on '{board}': {ranking.get('rank')} (with '{ranking.get('modelName')}')"
    return line


def plan_submit_step(context: StepContext) -> SubmitPlan:
    from drtasks.steps.importing import ConsoleImportPlan, DroaImportPlan

    options: SubmitOptions = context.options or SubmitOptions()
    settings = context.settings
    reference = options.leaderboard or settings.get("DR_DROA_LEADERBOARD")
    if not reference:
        raise DrtasksError("no leaderboard to submit to: set the profile's import.leaderboard (DR_DROA_LEADERBOARD) or pass --leaderboard")
    importing = context.last(DroaImportPlan)
    if options.model is None and context.last(ConsoleImportPlan) is not None:
        raise DrtasksError("the submit step submits to a DRoA leaderboard, but the import step imports into the AWS DeepRacer console")
    session = _session(context)
    api = session.api()
    board = resolve_leaderboard(api, reference)
    opens, closes, now = _moment(board.get("openTime")), _moment(board.get("closeTime")), datetime.now(timezone.utc)
    if (opens and now < opens) or (closes and now > closes):
        when = f"opens {board.get('openTime')}" if opens and now < opens else f"closed {board.get('closeTime')}"
        raise DrtasksError(f"DRoA leaderboard '{board.get('name')}' ({board.get('leaderboardId')}) {when}: The leaderboard is not accepting submissions.")
    used = max((int(s.get("submissionNumber") or 0) for s in api.list_submissions(str(board.get("leaderboardId")))), default=0)
    allowed = int(board.get("maxSubmissionsPerUser") or 0)
    if used >= allowed:
        raise DrtasksError(
            f"DRoA leaderboard '{board.get('name')}' allows {allowed} submission(s) per racer and you made {used}: "
            "Max number of submissions has been reached."
        )
    model = None
    if options.model is not None or importing is None:
        wanted = options.model or settings.get("DR_IMPORT_NAME") or (settings.get("DR_UPLOAD_S3_PREFIX") or "").strip("/")
        if not wanted:
            raise DrtasksError("which model to submit? pass --model ID|NAME, or set the profile's import.name")
        model = resolve_model(api, wanted)
        if str(model.get("status")) in ("ERROR", "DELETING"):
            raise DrtasksError(f"DRoA model {_label(model)} is {model.get('status')}: it cannot race; Model is not in a submittable state.")
        importing = None
    return SubmitPlan(settings, session, board, model, importing, used)
