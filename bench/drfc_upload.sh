#!/usr/bin/env bash
# DRfC's way of uploading a model, reduced to its transfers: download every piece with the AWS CLI
# into a work directory, write the generated files, then `aws s3 sync` the directory up.
# Generated files are written with printf here (DRfC runs jq and a Python helper), which only
# flatters this approach. All inputs come from the environment:
#   SRC_PROFILE SRC_ENDPOINT SRC_BUCKET SRC_PREFIX CKPT CKPT_NUM REWARD_KEY
#   DST_PROFILE DST_ENDPOINT DST_BUCKET DST_PREFIX WORK_DIR
set -euo pipefail

src() { aws --profile "$SRC_PROFILE" --endpoint-url "$SRC_ENDPOINT" "$@"; }
dst() { aws --profile "$DST_PROFILE" --endpoint-url "$DST_ENDPOINT" "$@"; }
quiet=(--only-show-errors --no-progress)

SOURCE="s3://$SRC_BUCKET/$SRC_PREFIX"
mkdir -p "$WORK_DIR/model" "$WORK_DIR/ip" "$WORK_DIR/metrics"

for name in "$CKPT.data-00000-of-00001" "$CKPT.index" "$CKPT.meta" "model_$CKPT_NUM.pb" \
            model_metadata.json deepracer_checkpoints.json; do
    src s3 cp "${quiet[@]}" "$SOURCE/model/$name" "$WORK_DIR/model/$name"
done
src s3 cp "${quiet[@]}" "$SOURCE/ip/hyperparameters.json" "$WORK_DIR/ip/hyperparameters.json"
src s3 cp "${quiet[@]}" "s3://$SRC_BUCKET/$REWARD_KEY" "$WORK_DIR/reward_function.py"
src s3 cp "${quiet[@]}" --recursive "$SOURCE/metrics/" "$WORK_DIR/metrics/"

cp "$WORK_DIR/model/model_metadata.json" "$WORK_DIR/model_metadata.json"
printf '%s\n' "$CKPT" > "$WORK_DIR/model/.coach_checkpoint"
entry="{\"name\": \"$CKPT\", \"time_stamp\": 0, \"avg_eval_metric\": 0.0}"
printf '{"best_checkpoint": %s, "last_checkpoint": %s}\n' "$entry" "$entry" > "$WORK_DIR/model/deepracer_checkpoints.json"
printf 'AWS_REGION: "us-east-1"\nJOB_TYPE: "TRAINING"\nSAGEMAKER_SHARED_S3_BUCKET: "%s"\nSAGEMAKER_SHARED_S3_PREFIX: "%s"\n' \
    "$DST_BUCKET" "$DST_PREFIX" > "$WORK_DIR/training_params.yaml"

dst s3 sync "${quiet[@]}" "$WORK_DIR" "s3://$DST_BUCKET/$DST_PREFIX"
