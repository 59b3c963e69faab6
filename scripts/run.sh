#!/usr/bin/env bash
# scripts/run.sh -- install what is missing, build, and run mtable-proxy.
#
#   scripts/run.sh [mtable-proxy options]
#
# With no options the proxy serves Azurite's development account
# (devstoreaccount1, UseDevelopmentStorage=true) on http://127.0.0.1:10002
# with both tables in memory, and its admin endpoint on 127.0.0.1:10090.
# Options and MTABLE_* environment variables pass straight through; see
# `scripts/run.sh --help`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [ "${MTABLE_SKIP_DEPS:-0}" != 1 ]; then
    bash docker/install-deps.sh >&2
fi
if [ ! -f build/build.ninja ]; then
    meson setup build >&2
fi
ninja -C build proxy/mtable-proxy tools/mtablectl/mtablectl >&2
exec build/proxy/mtable-proxy "$@"
