#!/usr/bin/env bash
# scripts/test.sh -- build mtable and run every test suite.
#
#   scripts/test.sh          build in ./build and run everything
#   scripts/test.sh --asan   the same in ./build-asan with ASan and UBSan,
#                            and a smaller budget for the concurrency tester
#
# Steps: install the Debian packages the project needs (docker/install-deps.sh,
# a no-op when they are present), configure with meson, build, then run the
# suites meson knows (`meson test --list`), one `meson test --suite` each:
# unit (cmocka programs and checks), sct (the concurrency tester's matrix),
# cases (REST request/response files), e2e (the official SDKs against Azurite
# and the proxy) and fuzz-corpus (each fuzz target over its corpus). Then the
# image smoke test (docker/smoke.sh).
#
# Output: a PASS/FAIL/SKIP line per test (scripts/test-totals.py), a total
# per suite, and last "N passed, N failed": N counts cmocka cases, TAP lines
# and node test cases, one per other test, one failure per broken setup step;
# a skip not listed with its reason is a failure. Exit 0 when none failed.
#
# Environment:
#   MTABLE_SCT_ITERATIONS      iterations per scenario and strategy (5000;
#                              2000 with --asan)
#   MTABLE_SCT_BUG_SEEDS       seeds each seeded bug must be found from ("1 2
#                              3"; "1" with --asan)
#   MTABLE_SCT_BUG_ITERATIONS  iteration bound per seeded-bug run (20000)
#   MTABLE_TEST_TIMEOUT        seconds allowed to one tester run (300)
#   MTABLE_BUILD_DIR           build directory (build, or build-asan)
#   MTABLE_SKIP_DEPS=1         do not run docker/install-deps.sh
#   MTABLE_SCT                 tester binary (default BUILD/test/sct/mt-sct)
#   MTABLE_SKIP_E2E=1          do not run the end-to-end suite
#   MTABLE_SKIP_CASES=1        do not run the REST cases (test/cases)
#   MTABLE_SKIP_IMAGE=1        do not run the image smoke test (docker/smoke.sh)
#   MTABLE_PROXY_BIN           proxy under e2e and cases test (default this build's)
#   MTABLE_E2E_BACKEND         auto|azurite|memory: the proxy's backends (see
#                              test/e2e/README.md; default azurite, memory with --asan)

set -uo pipefail

asan=0
for arg in "$@"; do
    case "$arg" in
    --asan) asan=1 ;;
    -h | --help) sed -n '2,/^$/p' "$0" | sed -e '/^$/d' -e 's/^# \{0,1\}//' && exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (try --help)" >&2 && exit 2 ;;
    esac
done
if [ "$asan" -eq 1 ]; then
    build=${MTABLE_BUILD_DIR:-build-asan}
    setup_opts=("-Db_sanitize=address,undefined" -Db_lundef=false)
else
    build=${MTABLE_BUILD_DIR:-build}
    setup_opts=()
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtable-test.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
total_pass=0
total_fail=0
fail() { echo "FAIL $*" && total_fail=$((total_fail + 1)); }
show_log() { tail -n "${2:-40}" "$1" | sed 's/^/    | /'; }
# Setup: a broken step counts as one failure and the run goes on.
printf '\n== setup\n'
if [ "${MTABLE_SKIP_DEPS:-0}" = 1 ]; then
    echo "deps: skipped (MTABLE_SKIP_DEPS=1)"
elif bash docker/install-deps.sh </dev/null; then
    echo "deps: ok"
else
    fail "deps: docker/install-deps.sh failed"
fi
. scripts/node-env.sh # Node.js 18 (Debian 12's): the flag the SDKs need
configured=0
if [ -f "$build/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$build" "${setup_opts[@]}" >"$tmp/setup.log" 2>&1 ||
        meson setup --wipe "$build" "${setup_opts[@]}" >"$tmp/setup.log" 2>&1
else
    meson setup "$build" "${setup_opts[@]}" >"$tmp/setup.log" 2>&1
fi && configured=1
if [ "$configured" = 1 ]; then
    meson configure "$build" "-Dsct_bug_seeds=${MTABLE_SCT_BUG_SEEDS:-auto}" >>"$tmp/setup.log" 2>&1
    echo "configure: ok ($build${setup_opts[*]:+ ${setup_opts[*]}})"
    # -k 0: one broken file does not hide the tests that do not need it.
    if ninja -C "$build" -k 0 >"$tmp/build.log" 2>&1; then
        echo "build: ok"
    else
        fail "build: ninja -C $build reported errors"
        grep -E 'error|FAILED' "$tmp/build.log" | head -n 60 | sed 's/^/    | /'
    fi
else
    fail "configure: meson setup $build failed"
    show_log "$tmp/setup.log" 60
fi

# The suites, in this order; a suite meson does not list is a failure.
suites=(unit sct cases e2e fuzz-corpus)
listed=$(meson test -C "$build" --no-rebuild --list 2>/dev/null | sed -n 's/^[^:]*:\([^ ]*\) \/ .*/\1/p' | sort -u)
for suite in "${suites[@]}"; do
    [ "$configured" = 1 ] || break
    printf '\n== %s\n' "$suite"
    skip_var=MTABLE_SKIP_${suite^^} && skip_var=${skip_var//-/_}
    if [ "${!skip_var:-0}" = 1 ]; then
        echo "SKIP $suite: $skip_var=1" && continue
    fi
    grep -qx -- "$suite" <<<"$listed" || { fail "$suite: meson has no suite '$suite'" && continue; }
    t0=$SECONDS
    rm -f "$build/meson-logs/$suite.json"
    # (meson test builds what the suite needs, e.g. test/e2e's packages)
    meson test -C "$build" --suite "$suite" --logbase "$suite" >"$tmp/$suite.log" 2>&1 </dev/null
    [ -f "$build/meson-logs/$suite.json" ] || { fail "$suite: meson test did not run" && show_log "$tmp/$suite.log" && continue; }
    python3 scripts/test-totals.py "$build/meson-logs/$suite.json" >"$tmp/totals" 2>&1
    grep -v '^TOTALS ' "$tmp/totals" | head -n 600
    read -r _ p f < <(grep '^TOTALS ' "$tmp/totals") || { p=0 && f=1 && echo "FAIL $suite: no totals"; }
    echo "-- $suite: $p ok, $f not ok ($((SECONDS - t0))s)"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
done

# Image smoke test: docker/smoke.sh builds docker/Dockerfile with podman on a
# debootstrap-made base image and runs it (health, readiness, a signed
# request, non-root, the HEALTHCHECK, a clean stop). Its PASS and FAIL lines
# are counted; a run that ends without its summary line counts as one
# failure. Only MTABLE_SKIP_IMAGE=1 skips it.
printf '\n== image (docker/smoke.sh: podman build and run of docker/Dockerfile)\n'
if [ "${MTABLE_SKIP_IMAGE:-0}" = 1 ]; then
    echo "SKIP image: MTABLE_SKIP_IMAGE=1"
else
    out=$tmp/image.log rc=0 t0=$SECONDS
    timeout -k 10 1800 bash docker/smoke.sh >"$out" 2>&1 </dev/null || rc=$?
    grep -aE '^(PASS|FAIL) image|^    \|' "$out"
    p=$(grep -acE '^PASS image/' "$out")
    f=$(grep -acE '^FAIL image/' "$out")
    if ! tail -n 1 "$out" | grep -qE '^[0-9]+ passed, [0-9]+ failed$'; then
        echo "FAIL image: docker/smoke.sh ended without its summary (exit $rc)"
        show_log "$out" 30
        f=$((f + 1))
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL image: docker/smoke.sh exited with $rc but reported no failure"
        f=1
    fi
    echo "-- image: $p ok, $f not ok ($((SECONDS - t0))s)"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
fi

[ $((total_pass + total_fail)) -gt 0 ] || fail ": no test ran"
echo
printf '%d passed, %d failed\n' "$total_pass" "$total_fail"
[ "$total_fail" -eq 0 ]
