#!/usr/bin/env bash
# test/mutants/run.sh -- how strong are the tests? Applies each semantic
# mutant of test/mutants/mutants.txt alone to a scratch copy of the tree,
# rebuilds, runs the tests the mutant names, and reports it killed (some
# test failed) or survived (all passed).
#
#   test/mutants/run.sh [NAME...]     every mutant, or only those named
#
# The working tree is never changed: the tree (without .git, build
# directories and node_modules) is copied to a scratch directory, built
# there once, and each mutant is applied to that copy and reverted after.
# First every test the list names runs on the unmutated copy: a test that
# fails there cannot judge a mutant (reported as "baseline failed").
#
# Output: one line per mutant,
#   KILLED    NAME  by SUITE/TEST
#   SURVIVED  NAME  (FILE: WHY)
#   STILLBORN NAME  (the mutant does not build)
#   BAD       NAME  (its search string is not in the file exactly once)
# and last "N killed, N survived, N stillborn, N bad". Exit 0 when every
# mutant was applied (survivors are a finding, not an error of the script).
#
# Environment:
#   MTABLE_MUTANT_DIR      scratch directory (default a new one under /tmp,
#                          removed at the end; a given one is kept)
#   MTABLE_SCT_ITERATIONS  tester iterations per scenario and strategy
#                          (default 1000 here: a fast subset)
#   MTABLE_TEST_TIMEOUT    seconds allowed to one tester run (default 120)
#   MTABLE_MUTANT_TIMEOUT  seconds allowed to one meson test (default 600)

set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
list=$root/test/mutants/mutants.txt
mutant() { python3 "$root/test/mutants/mutant.py" "$list" "$@"; }
export MTABLE_SCT_ITERATIONS=${MTABLE_SCT_ITERATIONS:-1000}
export MTABLE_TEST_TIMEOUT=${MTABLE_TEST_TIMEOUT:-120}
limit=${MTABLE_MUTANT_TIMEOUT:-600}

if [ -n "${MTABLE_MUTANT_DIR:-}" ]; then
    work=$MTABLE_MUTANT_DIR
    mkdir -p "$work" || exit 2
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/mtable-mutants.XXXXXX") || exit 2
    trap 'rm -rf "$work"' EXIT
fi
tree=$work/tree
build=$work/build

names=$(mutant names) || exit 2
if [ $# -gt 0 ]; then
    names=$(printf '%s\n' "$@")
fi

echo "copying the tree to $tree"
rm -rf "$tree" && mkdir -p "$tree" || exit 2
tar -C "$root" --exclude=./.git --exclude='./build*' --exclude=node_modules -cf - . |
    tar -C "$tree" -xf - || exit 2
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$tree" -Dsct_bug_seeds=1 >"$work/setup.log" 2>&1 || {
        tail -n 30 "$work/setup.log"
        exit 2
    }
fi
echo "building the unmutated copy"
ninja -C "$build" >"$work/build.log" 2>&1 || {
    tail -n 30 "$work/build.log"
    exit 2
}

# Runs one SUITE/TEST of the build; 0 when it passed.
run_test()
{
    local suite=${1%%/*} name=${1#*/}
    timeout -k 10 "$limit" meson test -C "$build" --no-rebuild --suite "$suite" "$name" \
        >"$work/test.log" 2>&1 </dev/null
}

# The baseline: every test named, on the unmutated copy.
declare -A broken=()
for sel in $(for n in $names; do mutant field "$n" kill; done | tr ' ' '\n' | sort -u); do
    if run_test "$sel"; then
        echo "baseline ok: $sel"
    else
        echo "baseline FAILED: $sel (it judges no mutant)"
        broken[$sel]=1
    fi
done

killed=0 survived=0 stillborn=0 bad=0
for n in $names; do
    file=$(mutant field "$n" file) || {
        echo "BAD       $n (not in $list)"
        bad=$((bad + 1))
        continue
    }
    if ! mutant apply "$n" "$tree" 2>"$work/apply.log"; then
        echo "BAD       $n ($(cat "$work/apply.log"))"
        bad=$((bad + 1))
        continue
    fi
    t0=$SECONDS
    if ! ninja -C "$build" >"$work/build.log" 2>&1; then
        echo "STILLBORN $n ($file does not build)"
        stillborn=$((stillborn + 1))
    else
        by=""
        for sel in $(mutant field "$n" kill); do
            [ -n "${broken[$sel]:-}" ] && continue
            if ! run_test "$sel"; then
                by=$sel
                break
            fi
        done
        if [ -n "$by" ]; then
            echo "KILLED    $n by $by ($((SECONDS - t0))s)"
            killed=$((killed + 1))
        else
            echo "SURVIVED  $n ($file: $(mutant field "$n" why))"
            survived=$((survived + 1))
        fi
    fi
    mutant revert "$n" "$tree"
done
# Leave the scratch build matching the unmutated copy.
ninja -C "$build" >/dev/null 2>&1

echo
echo "$killed killed, $survived survived, $stillborn stillborn, $bad bad"
[ "$bad" -eq 0 ] && [ "$stillborn" -eq 0 ]
