#!/usr/bin/env bash
# DRfC's way of building and uploading the car's archive from S3 (dr-create-car-zip +
# dr-upload-car-zip), reduced to its transfers: download the frozen graph and the metadata with the
# AWS CLI, `tar czf` them as agent/model.pb + model_metadata.json, upload the archive with the CLI.
# All inputs come from the environment:
#   PROFILE ENDPOINT BUCKET PB_KEY METADATA_KEY TARGET_BUCKET TARGET_KEY WORK_DIR
set -euo pipefail

s3() { aws --profile "$PROFILE" --endpoint-url "$ENDPOINT" s3 "$@"; }
quiet=(--only-show-errors --no-progress)

mkdir -p "$WORK_DIR/agent"
s3 cp "${quiet[@]}" "s3://$BUCKET/$PB_KEY" "$WORK_DIR/agent/model.pb"
s3 cp "${quiet[@]}" "s3://$BUCKET/$METADATA_KEY" "$WORK_DIR/model_metadata.json"
tar -czf "$WORK_DIR/carfile.tar.gz" -C "$WORK_DIR" agent/model.pb model_metadata.json
s3 cp "${quiet[@]}" "$WORK_DIR/carfile.tar.gz" "s3://$TARGET_BUCKET/$TARGET_KEY"
