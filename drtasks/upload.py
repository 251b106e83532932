"""dr-upload-model as plain functions: resolve, build the plan, apply it, verify it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from drtasks.config import targets
from drtasks.config.settings import Settings
from drtasks.manifest import find_pieces, upload_manifest
from drtasks.model import Checkpoint, SourceModel
from drtasks.model_checks import check_model
from drtasks.plan import Plan, list_target, plan_upload
from drtasks.s3 import S3Location, head, make_client
from drtasks.training_params import to_yaml, training_params
from drtasks.transfer import Check, Progress, TransferConfig, apply, verify


@dataclass
class UploadJob:
    plan: Plan
    checkpoint: Checkpoint
    source_client: Any
    target_client: Any


def clients_for(source: S3Location, target: S3Location, concurrency: int) -> tuple[Any, Any]:
    source_client = make_client(source, max_pool_connections=concurrency + 2)
    target_client = source_client if source.same_service(target) else make_client(target, max_pool_connections=concurrency + 2)
    return source_client, target_client


def prepare_upload(settings: Settings, local: bool = False, wipe: bool = False, config: TransferConfig | None = None) -> UploadJob:
    """Everything up to the plan; nothing is written."""
    config = config or TransferConfig()
    source = targets.source_location(settings)
    target = targets.upload_location(settings, local=local)
    source_client, target_client = clients_for(source, target, config.max_concurrency)

    with ThreadPoolExecutor(2) as pool:
        # Reads that do not depend on each other overlap: the target listing and the reward
        # function's HEAD run while the source model is listed.
        listing = pool.submit(list_target, target_client, target)
        reward = pool.submit(head, source_client, source.bucket, targets.reward_key(settings))
        model = SourceModel.load(source_client, source)
        checkpoint = model.select(targets.checkpoint_policy(settings))
        check_model(source_client, model, checkpoint)
        pieces = find_pieces(
            source_client, model, checkpoint, targets.reward_key(settings), targets.metrics_prefix(settings), reward.result
        )
        existing = listing.result()
    params = to_yaml(training_params(settings, target, pieces.metrics_file_key))
    manifest = upload_manifest(model, checkpoint, pieces, params)
    plan = plan_upload(manifest, source, target, target_client, wipe=wipe, existing=existing)
    plan.notes.append(f"checkpoint {checkpoint.name} ({targets.checkpoint_policy(settings)})")
    return UploadJob(plan, checkpoint, source_client, target_client)


def execute_upload(job: UploadJob, progress: Progress | None = None, config: TransferConfig | None = None) -> list[Check]:
    apply(job.plan, job.source_client, job.target_client, config, progress)
    return verify(job.plan, job.target_client)
