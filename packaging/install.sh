#!/bin/sh
# Installs berthd on a Debian 12 host (or into a staging root): the binary,
# the systemd units, the docs, an example /etc/docker/daemon.json when the
# host has none, and the docker group; then enables containerd and berthd.
#
#   packaging/install.sh [--binary PATH] [--prefix /usr] [--destdir DIR] [--no-start]
#
# --destdir (or DESTDIR) stages everything under DIR, as packagers and the
# tests do: nothing is enabled or started then, and the docker group is
# added to DIR/etc/group only when that file exists.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
prefix=/usr
destdir=${DESTDIR:-}
binary=""
start=1

usage() { echo "usage: $0 [--binary PATH] [--prefix DIR] [--destdir DIR] [--no-start]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) [ $# -ge 2 ] || usage; binary=$2; shift 2 ;;
        --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
        --destdir) [ $# -ge 2 ] || usage; destdir=$2; shift 2 ;;
        --no-start) start=0; shift ;;
        *) usage ;;
    esac
done

# The release build when there is one, else the debug build.
if [ -z "$binary" ]; then
    for candidate in "$repo/target/release/berthd" "$repo/target/debug/berthd"; do
        if [ -x "$candidate" ]; then binary=$candidate; break; fi
    done
fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
    echo "no berthd binary: build it (cargo build --release -p berthd) or pass --binary PATH" >&2
    exit 1
fi
if [ -z "$destdir" ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh must run as root (or with --destdir to stage)" >&2
    exit 1
fi

root=${destdir%/}
bindir=$prefix/bin
unitdir=$prefix/lib/systemd/system
docdir=$prefix/share/doc/berthd

install -D -m 0755 "$binary" "$root$bindir/berthd"
# The per-container log copier, when it was built beside the binary
# (without it berthd starts itself as the copier).
copier="$(dirname "$binary")/berthd-log-copier"
if [ -x "$copier" ]; then install -D -m 0755 "$copier" "$root$bindir/berthd-log-copier"; fi
# The units name /usr/bin/berthd; another prefix gets its own path in them.
for unit in berthd.service berthd.socket; do
    sed "s|/usr/bin/berthd|$bindir/berthd|g" "$here/$unit" >"$here/.$unit.tmp"
    install -D -m 0644 "$here/.$unit.tmp" "$root$unitdir/$unit"
    rm -f "$here/.$unit.tmp"
done
install -D -m 0644 "$here/daemon.json" "$root$docdir/examples/daemon.json"
for doc in README.md COMPAT.md docs/switching-from-dockerd.md; do
    if [ -f "$repo/$doc" ]; then install -D -m 0644 "$repo/$doc" "$root$docdir/$(basename "$doc")"; fi
done
# An operator's daemon.json (dockerd's or an earlier berthd's) is kept as it is.
if [ ! -e "$root/etc/docker/daemon.json" ]; then
    install -D -m 0644 "$here/daemon.json" "$root/etc/docker/daemon.json"
    echo "installed an example $root/etc/docker/daemon.json"
fi

# The socket unit gives /run/docker.sock to the docker group, as dockerd does.
if [ -z "$root" ]; then
    getent group docker >/dev/null 2>&1 || groupadd --system docker
elif [ -f "$root/etc/group" ]; then
    grep -q '^docker:' "$root/etc/group" || groupadd --prefix "$root" --system docker
fi

echo "installed berthd into ${root:-/}: $bindir/berthd, $unitdir/berthd.{service,socket}"
if [ -n "$root" ] || [ "$start" = 0 ]; then
    exit 0
fi
if ! command -v systemctl >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then
    echo "systemd is not running: start berthd by hand (berthd, or scripts/run-berthd.sh)"
    exit 0
fi
systemctl daemon-reload
# dockerd and berthd cannot both own /run/docker.sock: leave a dockerd that
# runs or starts at boot alone and say how to switch.
for unit in docker.service docker.socket; do
    if systemctl is-active --quiet "$unit" || systemctl is-enabled --quiet "$unit" 2>/dev/null; then
        echo "$unit is in use: berthd is installed but not enabled; switch with scripts/switch-from-dockerd.sh (see $docdir/switching-from-dockerd.md)"
        exit 0
    fi
done
systemctl enable --now containerd.service berthd.socket berthd.service
echo "berthd is running: docker version should say Server: berthd"
