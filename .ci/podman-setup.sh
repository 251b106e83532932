#!/bin/sh
# Make sure the container engine the car-zip tests need is installed: podman (serving the
# Docker API), runc (crun fails on cgroups on CI machines) and busybox-static (the whole
# root file system of the test images). Idempotent: installs only what is missing, and
# writes nothing else; the tests generate their own containers.conf and storage.
set -eu

missing=""
command -v podman >/dev/null 2>&1 || missing="$missing podman"
command -v runc >/dev/null 2>&1 || missing="$missing runc"
dpkg -s busybox-static >/dev/null 2>&1 || missing="$missing busybox-static"

if [ -z "$missing" ]; then
    echo "podman-setup: podman, runc and busybox-static already installed; nothing to do"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "podman-setup: need root (or sudo) to install:$missing" >&2
    exit 1
fi

echo "podman-setup: installing$missing"
$as_root apt-get update -qq
# shellcheck disable=SC2086  # the package list is meant to split into words
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
echo "podman-setup: installed$missing ($(podman --version))"
