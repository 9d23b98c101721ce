#!/bin/sh
# Moves a host from dockerd to berthd (to-berthd) or back (to-dockerd), as
# docs/switching-from-dockerd.md describes:
#   1. the tagged images of the running daemon are saved (docker save);
#   2. that daemon is stopped and disabled (its systemd units);
#   3. named and anonymous volumes move to the other daemon's data-root
#      (both keep them as <data-root>/volumes/<name>/_data);
#   4. the other daemon is enabled and started;
#   5. the images are loaded into it (docker load).
# Containers do not carry over: their names are written to
# $STATE/containers.txt so they can be recreated (docker compose up, or the
# same docker run). Run as root.
#
# Settings (environment), with their defaults:
#   DOCKERD_HOST=unix:///run/docker.sock   BERTHD_HOST=unix:///run/docker.sock
#   DOCKERD_ROOT=/var/lib/docker           BERTHD_ROOT=/var/lib/berth
#   DOCKERD_UNITS="docker.socket docker.service"
#   BERTHD_UNITS="berthd.socket berthd.service"
#   STATE=/var/lib/berth-switch  (the saved images and container list)
#   SYSTEMCTL=systemctl          DOCKER=docker
set -eu

usage() { echo "usage: $0 to-berthd|to-dockerd" >&2; exit 2; }
[ $# -eq 1 ] || usage

DOCKERD_HOST=${DOCKERD_HOST:-unix:///run/docker.sock}
BERTHD_HOST=${BERTHD_HOST:-unix:///run/docker.sock}
DOCKERD_ROOT=${DOCKERD_ROOT:-/var/lib/docker}
BERTHD_ROOT=${BERTHD_ROOT:-/var/lib/berth}
DOCKERD_UNITS=${DOCKERD_UNITS:-docker.socket docker.service}
BERTHD_UNITS=${BERTHD_UNITS:-berthd.socket berthd.service}
STATE=${STATE:-/var/lib/berth-switch}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
DOCKER=${DOCKER:-docker}

case "$1" in
    to-berthd)
        from_host=$DOCKERD_HOST; from_root=$DOCKERD_ROOT; from_units=$DOCKERD_UNITS
        to_host=$BERTHD_HOST; to_root=$BERTHD_ROOT; to_units=$BERTHD_UNITS ;;
    to-dockerd)
        from_host=$BERTHD_HOST; from_root=$BERTHD_ROOT; from_units=$BERTHD_UNITS
        to_host=$DOCKERD_HOST; to_root=$DOCKERD_ROOT; to_units=$DOCKERD_UNITS ;;
    *) usage ;;
esac

say() { echo "switch: $*"; }
from() { "$DOCKER" -H "$from_host" "$@"; }
to() { "$DOCKER" -H "$to_host" "$@"; }

mkdir -p "$STATE"
from version --format '{{.Server.Version}}' >/dev/null || {
    echo "switch: the daemon to switch from does not answer on $from_host" >&2
    exit 1
}

# 1. Images: every tagged one, in one archive (shared layers once).
images=$(from image ls --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' | sort -u || true)
rm -f "$STATE/images.tar"
if [ -n "$images" ]; then
    say "saving $(echo "$images" | wc -l) images to $STATE/images.tar"
    # shellcheck disable=SC2086 # one reference per word
    from save -o "$STATE/images.tar" $images
fi
from ps -a --format '{{.Names}} {{.Image}}' >"$STATE/containers.txt"
if [ -s "$STATE/containers.txt" ]; then
    say "$(wc -l <"$STATE/containers.txt") containers do not carry over (listed in $STATE/containers.txt): recreate them"
fi

# 2. Stop the old daemon and keep it from starting at boot.
say "stopping $from_units"
# shellcheck disable=SC2086
"$SYSTEMCTL" disable --now $from_units

# 3. Volumes: the same directory layout on both sides, so each moves whole
#    (a rename on the same filesystem). dockerd's metadata.db is left alone:
#    labels and driver options stay with dockerd (see the docs).
mkdir -p "$to_root/volumes"
for dir in "$from_root"/volumes/*/; do
    [ -d "$dir/_data" ] || continue
    name=$(basename "$dir")
    if [ -e "$to_root/volumes/$name" ]; then
        say "volume $name already exists in $to_root: left where it was"
        continue
    fi
    mv "${dir%/}" "$to_root/volumes/$name"
    say "moved volume $name"
done

# 4. Start the new daemon and wait for it to answer.
say "starting $to_units"
# shellcheck disable=SC2086
"$SYSTEMCTL" enable --now $to_units
i=0
until to version --format '{{.Server.Version}}' >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 600 ]; then
        echo "switch: the new daemon does not answer on $to_host" >&2
        exit 1
    fi
    sleep 0.1
done

# 5. Images into the new daemon.
if [ -s "$STATE/images.tar" ]; then
    to load -i "$STATE/images.tar"
fi
say "done: $(to version --format '{{.Server.Platform.Name}} {{.Server.Version}}') answers on $to_host"
