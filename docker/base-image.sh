#!/usr/bin/env bash
# Makes a local stand-in for the Dockerfile's base image, python:3.11-slim, for engines that
# cannot pull it (no registry reachable): Debian bookworm (minbase) with python3, a venv at
# /usr/local so `python` and `pip` are in /usr/local/bin as in the official image, and this
# machine's CA certificates (package traffic may go through a TLS-intercepting proxy).
#
#   docker/base-image.sh TARBALL          write the root filesystem as a tarball (cached: kept
#                                         when it already exists)
#   docker/base-image.sh TARBALL TAG      ... then `docker import` it as TAG
#
# Needs root and debootstrap (apt-get install debootstrap). About 100 s from nothing.
set -euo pipefail

tarball=${1:?usage: base-image.sh TARBALL [TAG]}
tag=${2:-}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ ! -s "$tarball" ]; then
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/recsys-base-rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
        || { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
    rm -f "$rootfs.log"
    # python, pip in /usr/local/bin, as in the official image; the interpreter stays Debian's.
    chroot "$rootfs" /usr/bin/python3 -m venv /usr/local
    chroot "$rootfs" /usr/local/bin/python -m pip --version >/dev/null
    if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
        cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    fi
    # What an image needs no more of: package lists, caches, docs.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/tmp/*
    mkdir -p "$(dirname "$tarball")"
    tar --numeric-owner -C "$rootfs" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
fi

if [ -n "$tag" ]; then
    docker import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["python3"]' \
        "$tarball" "$tag" >/dev/null
fi
