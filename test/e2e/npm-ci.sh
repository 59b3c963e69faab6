#!/usr/bin/env bash
# test/e2e/npm-ci.sh -- the e2e packages for the tests that need them.
#
#   npm-ci.sh E2E_DIR STAMP
#
# Runs `npm ci` in E2E_DIR (the pinned SDKs and Azurite of test/e2e) unless
# its node_modules is newer than the lock file, then touches STAMP. Meson
# runs it as a build step the e2e suite and the Azurite-backed unit tests
# depend on, so `meson test` installs the packages before it needs them,
# and a failed install fails those tests rather than skipping them.
set -euo pipefail
dir=$1
stamp=$2
installed=$dir/node_modules/.package-lock.json
if [ ! -f "$installed" ] || [ "$dir/package-lock.json" -nt "$installed" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "npm-ci.sh: npm is not installed (docker/install-deps.sh installs it)" >&2
        exit 1
    fi
    (cd "$dir" && timeout -k 10 900 npm ci --no-audit --no-fund </dev/null)
fi
touch "$stamp"
