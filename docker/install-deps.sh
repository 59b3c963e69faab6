#!/usr/bin/env bash
# docker/install-deps.sh -- install the Debian packages mtable builds and
# tests with (Debian 12).
#
#   docker/install-deps.sh          everything: build, tests, image smoke test
#   docker/install-deps.sh build    only what compiling mtable-proxy and
#                                   mtablectl needs (docker/Dockerfile's
#                                   build stage, with -Dtests=false)
#
# Idempotent: it asks dpkg which packages are missing and touches apt only
# when something is. Runs as root, or through sudo otherwise; never prompts.
# Node.js and npm are installed only when no `node` is on the PATH, so a
# newer Node.js already on the machine is left alone.

set -euo pipefail

# What compiling the two programs needs, in one place.
BUILD_PACKAGES=(
    build-essential
    meson
    ninja-build
    pkg-config
    libmicrohttpd-dev
    libcurl4-openssl-dev
    libssl-dev
    libxml2-dev
    libcjson-dev
)

# What the tests need on top: the unit suite (cmocka), the sanitizer and
# memory-checking builds, the end-to-end suite (node, npm), the Python SDK
# suites (python-sdks.test.mjs: azure-data-tables from python3-azure, the
# legacy azure-cosmosdb-table), openssl (the Entra ID and TLS tests make
# their CA and certificates with it), the format check (unit test lint,
# clang-format 14), promtool for the /metrics test (Debian ships it in
# prometheus), and podman, runc and debootstrap for the image smoke test
# (docker/smoke.sh).
TEST_PACKAGES=(
    clang
    libclang-rt-14-dev
    libcmocka-dev
    valgrind
    nodejs
    npm
    python3
    python3-azure
    python3-azure-cosmosdb-table
    ca-certificates
    openssl
    clang-format-14
    prometheus
    podman
    runc
    debootstrap
)

case "${1:-all}" in
all) PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
build) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
*)
    echo "usage: install-deps.sh [all|build]" >&2
    exit 2
    ;;
esac

installed()
{
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [ "$status" = "install ok installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    case "$pkg" in
    nodejs | npm)
        # Whatever node is there (often a newer one than Debian's) wins.
        if command -v node >/dev/null 2>&1; then
            continue
        fi
        ;;
    esac
    if ! installed "$pkg"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all packages present"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    # -n: fail rather than wait for a password when nobody can type one.
    if [ -t 0 ]; then
        as_root=(sudo)
    else
        as_root=(sudo -n)
    fi
else
    echo "install-deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 1
fi

apt_opts=(-q -o DPkg::Lock::Timeout=300)
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y \
    --no-install-recommends "${missing[@]}"

still=()
for pkg in "${missing[@]}"; do
    if ! installed "$pkg"; then
        still+=("$pkg")
    fi
done
if [ "${#still[@]}" -ne 0 ]; then
    echo "install-deps: still missing after install: ${still[*]}" >&2
    exit 1
fi
echo "install-deps: done"
