#!/bin/sh
# deps.sh — make sure the Debian packages p4p builds and runs with are installed.
# As root, installs what is missing with apt-get; otherwise prints the exact command to run
# and fails. Called by `make deps`, which `make`, `make run` and `make test` depend on.
set -eu

PACKAGES="libsodium-dev libigraph-dev libsqlite3-dev sqlite3 libyaml-dev libcmocka-dev gnuplot-nox pkg-config"

if ! command -v dpkg-query >/dev/null 2>&1; then
    # Not Debian: trust pkg-config and say what we could not check.
    if pkg-config --exists libsodium igraph sqlite3 yaml-0.1 cmocka 2>/dev/null; then
        exit 0
    fi
    echo "deps: need libsodium, igraph, sqlite3, libyaml, cmocka (pkg-config) and gnuplot" >&2
    exit 1
fi

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi

echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
