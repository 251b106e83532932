"""Plan, show, ask, act: what every writing task does with the chains it built from its flags."""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drtasks.errors import DrtasksError
from drtasks.tasks.common import confirm

if TYPE_CHECKING:
    from drtasks.chain import ChainPlan, ChainRequest
    from drtasks.steps.base import StepResult


@dataclass(frozen=True)
class RunOptions:
    force: bool = False
    dry_run: bool = False
    json: bool = False
    show_all: bool = False  # every row, no folding of many-object folders
    wait: bool = False  # imports: wait until READY or failed
    question: str = "Apply this plan?"


def plan_chains(requests: "list[ChainRequest]") -> "list[ChainPlan]":
    """Plan every chain from one shared read of the sources."""
    from concurrent.futures import ThreadPoolExecutor

    from drtasks.chain import plan_chain
    from drtasks.steps.source import SourceReads

    with SourceReads() as reads, ThreadPoolExecutor(1) as loader:
        # The plans' S3 reads mostly wait on the network: let rich load meanwhile.
        loading = loader.submit(__import__, "drtasks.render")
        chains = [plan_chain(request, reads) for request in requests]
        loading.result()
    return chains


def run_chains(requests: "list[ChainRequest]", options: RunOptions) -> "list[list[StepResult]]":
    chains = plan_chains(requests)
    try:
        return _show_ask_apply(chains, options)
    finally:
        for chain in chains:
            chain.close()


def _show_ask_apply(chains: "list[ChainPlan]", options: RunOptions) -> "list[list[StepResult]]":
    from drtasks import render
    from drtasks.chain import apply_chain
    from drtasks.progress import progress_for
    from drtasks.steps.base import Runtime

    out = render.console()
    status = render.console(stderr=True) if options.json else out
    if options.json:
        documents = [chain.as_dict() for chain in chains]
        print(jsonlib.dumps(documents[0] if len(documents) == 1 else {"chains": documents}, indent=2))
    else:
        for chain in chains:
            render.print_chain(chain, out, options.show_all)
    if options.dry_run:
        imports = any(plan.step == "import" for chain in chains for plan in chain.plans)
        render.console(stderr=True).print(f"Dry run: nothing was written{' or imported' if imports else ''}.")
        return []
    if not any(chain.changes for chain in chains):
        status.print("Nothing to do: the targets already hold exactly this.")
        return []
    confirm(options.question, options.force)

    runtime = Runtime(status, progress_for, force=options.force, wait=options.wait)
    outcomes: list[list[StepResult]] = []
    for number, chain in enumerate(chains):
        results = apply_chain(chain, runtime)
        outcomes.append(results)
        for result in results:
            if result.checks:
                render.print_checks(result.checks, result.where or result.step, status)
            if result.report is not None:
                status.print(result.report)
        if len(chain.plans) > 1 or any(r.status == "failed" for r in results):
            who = f" (profile {chain.profile})" if chain.profile else ""
            status.print(render.results_table(results, f"done{who}: {chain.name}"))
        else:
            for result in results:
                status.print(f"{result.step}: {result.detail}")
        failure = next((r for r in results if r.status == "failed"), None)
        if failure is not None:
            left = [c.profile or "default" for c in chains[number + 1 :]]
            tail = f"; not shipped: profile {', '.join(left)}" if left else ""
            raise DrtasksError(f"{failure.step} failed: {failure.detail}{tail}", code=failure.code or 1)
    return outcomes
