"""Rich tables for what DRoA tells about a racer's models and leagues (read-only tasks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

from drtasks.units import human

if TYPE_CHECKING:
    from drtasks.importing.droa_logs import Stability
    from drtasks.metrics import Iteration


def _time(text: Any) -> str:
    return str(text or "")[:16].replace("T", " ") + (" UTC" if text else "")


def _seconds(milliseconds: Any) -> str:
    return f"{milliseconds / 1000:.3f} s" if isinstance(milliseconds, (int, float)) and not isinstance(milliseconds, bool) else ""


def _words(value: Any) -> str:
    return str(value or "").lower().replace("_", " ")


def model_table(model: dict[str, Any], verbose: bool = False) -> Table:
    """Identity, car, track and training, metadata; with ``verbose`` the action space too."""
    table = Table(title=f"DRoA model '{model.get('name')}'", title_justify="left", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")

    def section(title: str, rows: list[tuple[str, Any]]) -> None:
        shown = [(key, value) for key, value in rows if value not in (None, "", {}, [])]
        if shown:
            table.add_row(f"[underline]{title}[/underline]", "")
            for key, value in shown:
                table.add_row(f"  {key}", str(value))

    section("model", [
        ("id", model.get("modelId")), ("name", model.get("name")), ("description", model.get("description")),
        ("status", model.get("status")), ("training status", model.get("trainingStatus")),
        ("created", _time(model.get("createdAt"))), ("size", human(model["fileSizeInBytes"]) if isinstance(model.get("fileSizeInBytes"), int) else None),
        ("packaging", model.get("packagingStatus")), ("import error", model.get("importErrorMessage")),
    ])
    car = model.get("carCustomization") or {}
    section("car", [("shell", car.get("carShell")), ("colour", car.get("carColor"))])
    training = model.get("trainingConfig") or {}
    track = training.get("trackConfig") or {}
    section("training", [
        ("track", track.get("trackId")), ("direction", _words(track.get("trackDirection"))), ("race type", _words(training.get("raceType"))),
        ("max time", f"{training['maxTimeInMinutes']} min" if training.get("maxTimeInMinutes") else None),
        ("min eval trials", training.get("minEvalTrials")),
    ])
    metadata = model.get("metadata") or {}
    sensors = metadata.get("sensors") or {}
    section("agent", [("algorithm", metadata.get("agentAlgorithm")), ("camera", sensors.get("camera")), ("lidar", sensors.get("lidar"))])
    section("hyperparameters", sorted((metadata.get("hyperparameters") or {}).items()))
    space = metadata.get("actionSpace") or {}
    continuous = space.get("continous") or space.get("continuous") or {}  # DRoA's model spells it "continous"
    discrete = space.get("discrete") or []
    if continuous:
        section("action space", [
            ("type", "continuous"),
            ("speed", f"{continuous.get('lowSpeed')} to {continuous.get('highSpeed')} m/s"),
            ("steering", f"{continuous.get('lowSteeringAngle')} to {continuous.get('highSteeringAngle')} degrees"),
        ])
    elif discrete:
        rows: list[tuple[str, Any]] = [("type", f"discrete, {len(discrete)} actions")]
        if verbose:
            rows += [(f"action {n}", f"speed {a.get('speed')} m/s, steering {a.get('steeringAngle')} degrees") for n, a in enumerate(discrete)]
        section("action space", rows)
    return table


def _num(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "" if value is None else f"{value:.{digits}f}{unit}"


def training_summary_table(iterations: "list[Iteration]", title: str) -> Table:
    """Per iteration: training episodes with mean reward and progress, and the evaluation."""
    table = Table(title=title, title_justify="left")
    for name in ("iteration", "episodes", "reward", "progress %", "eval episodes", "eval progress %", "laps", "mean lap", "best lap"):
        table.add_column(name, justify="right", no_wrap=True)
    for it in iterations:
        t, e = it.training, it.evaluation
        table.add_row(str(it.number), str(t.episodes), _num(t.reward, 2), _num(t.progress), str(e.episodes or ""), _num(e.progress),
                      str(e.laps or ""), _num(e.lap_time, 3, " s"), _num(e.best_lap, 3, " s"))
    return table


def stability_table(stability: "Stability", title: str) -> Table:
    """Step timing per simtrace iteration (trace/iteration), then OVERALL, as DRfC's summary shows it."""
    table = Table(title=title, title_justify="left")
    for name in ("trace/iteration", "steps", "avg ms", "max ms", "p95 ms", "std ms", "rtf"):
        table.add_column(name, justify="right", no_wrap=True)
    rows = [*stability.rows, *([stability.overall] if stability.overall else [])]
    for row in rows:
        table.add_row(row.label, f"{row.steps:,}", f"{row.avg_ms:.1f}", f"{row.max_ms:.1f}", f"{row.p95_ms:.1f}", f"{row.std_ms:.1f}",
                      f"{row.rtf:.3f}" if row.rtf is not None else "n/a", style="bold" if row.label == "OVERALL" else None)
    return table


def leaderboards_table(boards: list[dict[str, Any]], now_iso: str) -> Table:
    table = Table(title="DRoA leaderboards", title_justify="left")
    for name in ("name", "id", "track", "race", "timing", "opens", "closes", "open", "racers"):
        table.add_column(name, overflow="fold")
    for board in boards:
        track = board.get("trackConfig") or {}
        is_open = str(board.get("openTime") or "") <= now_iso <= str(board.get("closeTime") or "")
        table.add_row(str(board.get("name")), str(board.get("leaderboardId")), f"{track.get('trackId')} {_words(track.get('trackDirection'))}",
                      _words(board.get("raceType")), _words(board.get("timingMethod")), _time(board.get("openTime")), _time(board.get("closeTime")),
                      "yes" if is_open else "no", str(board.get("participantCount", "")))
    return table


def ranking_table(board: dict[str, Any], rankings: list[dict[str, Any]], mine: dict[str, Any] | None) -> Table:
    """Every racer's best ranked race, best first; the racer's own row names the model and is bold."""
    track = board.get("trackConfig") or {}
    title = (
        f"DRoA leaderboard '{board.get('name')}' ({board.get('leaderboardId')}): {track.get('trackId')} {_words(track.get('trackDirection'))}, "
        f"{_words(board.get('raceType'))}, ranked by {_words(board.get('timingMethod'))}; "
        f"{_time(board.get('openTime'))} to {_time(board.get('closeTime'))}, {board.get('participantCount', len(rankings))} racer(s)"
    )
    table = Table(title=title, title_justify="left")
    for name, justify in (("rank", "right"), ("racer", "left"), ("time", "right"), ("laps", "right"), ("off-track", "right"),
                          ("resets", "right"), ("model", "left"), ("submitted", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for ranking in rankings:
        stats = ranking.get("stats") or {}
        own = bool(mine) and mine.get("rank") == ranking.get("rank") and mine.get("rankingScore") == ranking.get("rankingScore")
        table.add_row(str(ranking.get("rank")), str((ranking.get("userProfile") or {}).get("alias", "")), _seconds(ranking.get("rankingScore")),
                      str(stats.get("completedLapCount", "")), str(stats.get("offTrackCount", "")), str(stats.get("resetCount", "")),
                      str(mine.get("modelName")) if own and mine else "", _time(ranking.get("submittedAt")), style="bold" if own else None)
    return table


def submissions_table(submissions: list[dict[str, Any]]) -> Table:
    table = Table(title="your submissions", title_justify="left")
    for name in ("#", "model", "status", "best lap", "time", "laps", "submitted"):
        table.add_column(name, overflow="fold")
    for submission in sorted(submissions, key=lambda s: int(s.get("submissionNumber") or 0)):
        stats = submission.get("stats") or {}
        table.add_row(str(submission.get("submissionNumber")), str(submission.get("modelName")), str(submission.get("status")),
                      _seconds(stats.get("bestLapTime")), _seconds(submission.get("rankingScore")), str(stats.get("completedLapCount", "")),
                      _time(submission.get("submittedAt")))
    return table
