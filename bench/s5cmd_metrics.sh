#!/usr/bin/env bash
# s5cmd between two endpoints: it copies S3 to S3 only within one endpoint, so the folder goes
# down to a work directory and up again (two s5cmd runs, each with its default 256 workers).
#   CREDENTIALS SRC_PROFILE SRC_ENDPOINT SRC_URL DST_PROFILE DST_ENDPOINT DST_URL WORK_DIR
set -euo pipefail

mkdir -p "$WORK_DIR"
s5cmd --credentials-file "$CREDENTIALS" --profile "$SRC_PROFILE" --endpoint-url "$SRC_ENDPOINT" cp "$SRC_URL*" "$WORK_DIR/" >/dev/null
s5cmd --credentials-file "$CREDENTIALS" --profile "$DST_PROFILE" --endpoint-url "$DST_ENDPOINT" cp "$WORK_DIR/" "$DST_URL" >/dev/null
