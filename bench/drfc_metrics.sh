#!/usr/bin/env bash
# DRfC's way of moving a model's metrics between endpoints (dr-upload-model): download the folder
# with `aws s3 cp --recursive` into a work directory, then `aws s3 sync` it up. All inputs come from
# the environment:
#   SRC_PROFILE SRC_ENDPOINT SRC_URL DST_PROFILE DST_ENDPOINT DST_URL WORK_DIR
set -euo pipefail

quiet=(--only-show-errors --no-progress)
mkdir -p "$WORK_DIR"
aws --profile "$SRC_PROFILE" --endpoint-url "$SRC_ENDPOINT" s3 cp "${quiet[@]}" --recursive "$SRC_URL" "$WORK_DIR/"
aws --profile "$DST_PROFILE" --endpoint-url "$DST_ENDPOINT" s3 sync "${quiet[@]}" "$WORK_DIR/" "$DST_URL"
