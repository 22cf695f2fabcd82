#!/usr/bin/env bash
# A local stand-in for the python:3.11-slim base image, for machines that reach Debian's package
# archive but no image registry: Debian bookworm (python3 = 3.11) from debootstrap, imported into
# podman. The Dockerfile takes it as PYTHON_IMAGE (deploy/README.md, tests/deploy/).
#
#   sudo deploy/podman/base-image.sh        # prints the image name, e.g. localhost/streamnlp-base:3f2a...
#
# The tag is a hash of this script, so an unchanged recipe is built once per machine.
# Needs root (debootstrap), debootstrap and podman. DEBIAN_MIRROR overrides the archive.
set -euo pipefail

# python-is-python3: the Dockerfile and the health check call `python`; python3-venv: the image
# installs into a venv (Debian refuses system-wide pip, PEP 668); ca-certificates: pip over HTTPS.
packages=python3,python3-venv,python3-pip,python-is-python3,ca-certificates
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
tag="localhost/streamnlp-base:$(sha256sum "$0" | cut -c1-16)"

if podman image exists "$tag"; then
    echo "$tag"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "base-image.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" >&2
# Package caches are dead weight in an image (about 100 MB).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" --numeric-owner -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$tag" >&2
echo "$tag"
