#!/usr/bin/env bash
# test/sct/run.sh -- the concurrency tester's runs for `meson test --suite sct`,
# one TAP line per mt-sct run.
#
#   run.sh MT_SCT scenarios STRATEGY   every scenario (but broken-*) passes
#   run.sh MT_SCT bugs SEED            every seeded bug is found from SEED, in
#                                      the scenario `mt-sct --list-bugs` names
#   run.sh MT_SCT replay               the same seed replays byte for byte
#   run.sh MT_SCT broken-wakeup        a lost wake-up is a liveness failure
#
# The scenarios and bugs come from mt-sct itself, so no list is kept here.
# Budget (meson options sct_iterations and sct_bug_iterations set the
# defaults, the environment overrides them):
#   MTABLE_SCT_ITERATIONS      iterations per scenario and strategy
#   MTABLE_SCT_BUG_ITERATIONS  iteration bound per seeded-bug run (the tester
#                              stops at the first violation)
#   MTABLE_TEST_TIMEOUT        seconds allowed to one mt-sct run (300)
#   MTABLE_SCT                 another tester binary than MT_SCT
# A run that must pass exits 0 with a line starting OK; one that must find a
# violation exits 1 with a line starting VIOLATION. Exit 86 is a sanitizer
# report (the sanitizer build sets ASAN_OPTIONS/UBSAN_OPTIONS so).

set -uo pipefail

sct=${MTABLE_SCT:-$1}
kind=$2
arg=${3:-}
iters=${MTABLE_SCT_ITERATIONS:-${MTABLE_SCT_DEFAULT_ITERATIONS:-5000}}
bug_iters=${MTABLE_SCT_BUG_ITERATIONS:-${MTABLE_SCT_DEFAULT_BUG_ITERATIONS:-20000}}
limit=${MTABLE_TEST_TIMEOUT:-300}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mt-sct.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out
n=0
failed=0

describe_rc()
{
    case "$1" in
    124 | 137) echo "timed out after ${limit}s" ;;
    86) echo "sanitizer report (exit 86)" ;;
    *) echo "exit $1" ;;
    esac
}

# TAP line for run $1 (label); $2 = 1 if it passed; $3 = detail.
report()
{
    n=$((n + 1))
    if [ "$2" -eq 1 ]; then
        echo "ok $n - $1${3:+: $3}"
    else
        failed=$((failed + 1))
        echo "not ok $n - $1: $3"
        echo "# \$ ${sct##*/} ${cmd[*]}"
        tail -n 40 "$out" | sed 's/^/# | /'
    fi
}

# Runs mt-sct with args "$@" into $out; sets rc.
run()
{
    cmd=("$@")
    rc=0
    timeout -k 10 "$limit" "$sct" "$@" >"$out" 2>&1 </dev/null || rc=$?
}

expect_ok()
{
    local label=$1 line
    shift
    run "$@"
    line=$(grep -a -m 1 '^OK' "$out" | cut -c 1-200)
    if [ "$rc" -eq 0 ] && [ -n "$line" ]; then
        report "$label" 1 "$line"
    else
        report "$label" 0 "expected exit 0 and an OK line; got $(describe_rc "$rc")"
    fi
}

# $2: text the VIOLATION line must contain (any when empty).
expect_violation()
{
    local label=$1 want=$2 line
    shift 2
    run "$@"
    line=$(grep -a '^VIOLATION' "$out" | grep -a -m 1 -F -e "$want" | cut -c 1-200)
    if [ "$rc" -eq 1 ] && [ -n "$line" ]; then
        report "$label" 1 "$line"
    else
        report "$label" 0 "expected exit 1 and a VIOLATION line${want:+ mentioning '$want'}; got $(describe_rc "$rc")"
    fi
}

# Lines of "mt-sct FLAG" (blank and '#' lines dropped), or a failed run.
list()
{
    run "$1"
    if [ "$rc" -ne 0 ] || ! grep -aqv -e '^#' -e '^$' "$out"; then
        report "mt-sct $1" 0 "listed nothing ($(describe_rc "$rc"))"
        return 1
    fi
    grep -av -e '^#' -e '^$' "$out" >"$tmp/list"
}

case "$kind" in
scenarios)
    if list --list-scenarios; then
        while read -r s _; do
            case "$s" in
            broken-*) continue ;;
            esac
            expect_ok "scenario $s ($arg, $iters iterations)" --scenario "$s" \
                --strategy "$arg" --iterations "$iters" --seed 1
        done <"$tmp/list"
    fi
    ;;
bugs)
    if list --list-bugs; then
        while read -r b scenario _; do
            expect_violation "bug $b in scenario ${scenario:-all} (seed $arg)" "" --bug "$b" \
                --scenario "${scenario:-all}" --iterations "$bug_iters" --seed "$arg"
        done <"$tmp/list"
    fi
    ;;
replay)
    # Standard output only: a sanitizer's warnings carry the process id.
    cmd=(--replay 12345 --scenario streams --bug QueryStreamedLock)
    rc1=0 rc2=0
    timeout -k 10 "$limit" "$sct" "${cmd[@]}" >"$tmp/r1" 2>/dev/null </dev/null || rc1=$?
    timeout -k 10 "$limit" "$sct" "${cmd[@]}" >"$tmp/r2" 2>/dev/null </dev/null || rc2=$?
    cp "$tmp/r1" "$out"
    if [ "$rc1" -eq "$rc2" ] && [ -s "$tmp/r1" ] && cmp -s "$tmp/r1" "$tmp/r2"; then
        report "replay is deterministic" 1 "$(wc -l <"$tmp/r1") identical lines"
    else
        report "replay is deterministic" 0 "two replays of seed 12345 differ (exit $rc1, $rc2)"
    fi
    ;;
broken-wakeup)
    expect_violation "scenario broken-wakeup is a liveness failure" "liveness" \
        --scenario broken-wakeup --iterations 100 --seed 1
    ;;
*)
    echo "run.sh: unknown kind '$kind'" >&2
    exit 2
    ;;
esac

echo "1..$n"
[ "$n" -gt 0 ] && [ "$failed" -eq 0 ]
