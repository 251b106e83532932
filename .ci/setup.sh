#!/usr/bin/env bash
# Set up a fresh machine for drtasks' test suite: the container engine the car-zip tests
# drive through the Docker API, then drtasks itself with everything the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

sh .ci/podman-setup.sh
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e ".[test]"
