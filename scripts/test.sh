#!/usr/bin/env bash
# scripts/test.sh -- build mtable and run every test suite.
#
#   scripts/test.sh          build in ./build and run everything
#   scripts/test.sh --asan   the same in ./build-asan with ASan and UBSan,
#                            and a smaller budget for the concurrency tester
#
# Steps: install the Debian packages the project needs (docker/install-deps.sh,
# a no-op when they are present), configure with meson, build with ninja, run
# the unit suite (cmocka programs and checks registered with meson), then run
# the systematic concurrency tester (mt-sct): every scenario must pass, every
# seeded bug must be found, and a deliberately broken scenario must be
# reported as a liveness failure. Then the end-to-end suite (test/e2e): the
# official Azure Table SDKs against Azurite and against mtable-proxy in every
# phase and across a migration, under node's test runner. Then the REST
# cases, and the image smoke test (docker/smoke.sh).
#
# Output: each suite prints its own result lines; the very last line is
#   N passed, N failed
# totalled over all suites, where N counts individual cmocka test cases, one
# per non-cmocka test, one per tester run, and one failure per setup step that
# broke. The exit status is 0 exactly when nothing failed.
#
# Environment:
#   MTABLE_SCT_ITERATIONS      iterations per scenario and strategy (default
#                              5000; 2000 with --asan)
#   MTABLE_SCT_BUG_SEEDS       seeds each seeded bug must be found from
#                              (default "1 2 3"; "1" with --asan)
#   MTABLE_SCT_BUG_ITERATIONS  iteration bound per seeded-bug run (default
#                              20000; the tester stops at the first violation)
#   MTABLE_TEST_TIMEOUT        seconds allowed to one tester command (300)
#   MTABLE_BUILD_DIR           build directory (build, or build-asan)
#   MTABLE_SKIP_DEPS=1         do not run docker/install-deps.sh
#   MTABLE_SCT                 tester binary (default BUILD/test/sct/mt-sct)
#   MTABLE_SKIP_E2E=1          do not run the end-to-end suite
#   MTABLE_SKIP_CASES=1        do not run the REST cases (test/cases)
#   MTABLE_SKIP_IMAGE=1        do not run the image smoke test (docker/smoke.sh)
#   MTABLE_E2E_TIMEOUT         seconds allowed to the whole e2e run (1800)
#   MTABLE_PROXY_BIN           proxy under e2e test (default BUILD/proxy/mtable-proxy)
#   MTABLE_E2E_BACKEND         auto|azurite|memory: the proxy's backends (see
#                              test/e2e/README.md)
#
# With Node.js 18 on the PATH, scripts/node-env.sh adds the flag it needs to
# NODE_OPTIONS for every node process the suites start.

set -uo pipefail

usage()
{
    sed -n '2,/^$/p' "$0" | sed -e '/^$/d' -e 's/^# \{0,1\}//'
}

asan=0
for arg in "$@"; do
    case "$arg" in
    --asan) asan=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "test.sh: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2

if [ "$asan" -eq 1 ]; then
    build=${MTABLE_BUILD_DIR:-build-asan}
    setup_opts=("-Db_sanitize=address,undefined" -Db_lundef=false)
    sct_iters=${MTABLE_SCT_ITERATIONS:-2000}
    bug_seeds=${MTABLE_SCT_BUG_SEEDS:-1}
    meson_timeout_mult=4
    # A sanitizer report must not pass for the tester's own exit status 1
    # (a found violation), so give it a distinct one.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-exitcode=86:abort_on_error=0:detect_leaks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:exitcode=86}
else
    build=${MTABLE_BUILD_DIR:-build}
    setup_opts=()
    sct_iters=${MTABLE_SCT_ITERATIONS:-5000}
    bug_seeds=${MTABLE_SCT_BUG_SEEDS:-1 2 3}
    meson_timeout_mult=1
fi
bug_iters=${MTABLE_SCT_BUG_ITERATIONS:-20000}
cmd_timeout=${MTABLE_TEST_TIMEOUT:-300}
sct=${MTABLE_SCT:-$build/test/sct/mt-sct}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtable-test.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

total_pass=0
total_fail=0

# Counts n passing / failing tests.
count_pass()
{
    total_pass=$((total_pass + $1))
}
count_fail()
{
    total_fail=$((total_fail + $1))
}

section()
{
    printf '\n== %s\n' "$*"
}

# Prints the tail of a log, indented, so a failure explains itself.
show_log()
{
    local file=$1 lines=${2:-40}
    if [ -s "$file" ]; then
        tail -n "$lines" "$file" | sed 's/^/    | /'
    fi
}

# Runs a command under the per-command timeout; output goes to file $1.
run_bounded()
{
    local out=$1 limit=$2
    shift 2
    timeout -k 10 "$limit" "$@" >"$out" 2>&1 </dev/null
}

# ---------------------------------------------------------------------------
# Setup: dependencies, configure, build. A broken step counts as one failure
# and the run goes on, so the summary is always printed.

setup()
{
    section "setup"
    if [ "${MTABLE_SKIP_DEPS:-0}" = 1 ]; then
        echo "deps: skipped (MTABLE_SKIP_DEPS=1)"
    elif bash docker/install-deps.sh </dev/null; then
        echo "deps: ok"
    else
        echo "FAIL deps: docker/install-deps.sh failed"
        count_fail 1
    fi

    if ! command -v meson >/dev/null 2>&1 || ! command -v ninja >/dev/null 2>&1; then
        echo "FAIL build: meson or ninja not installed"
        count_fail 1
        return 1
    fi

    local rc=0
    if [ -f "$build/meson-private/coredata.dat" ]; then
        meson setup --reconfigure "$build" "${setup_opts[@]}" >"$tmp/setup.log" 2>&1 || rc=$?
        if [ "$rc" -ne 0 ]; then
            rc=0
            meson setup --wipe "$build" "${setup_opts[@]}" >"$tmp/setup.log" 2>&1 || rc=$?
        fi
    else
        meson setup "$build" "${setup_opts[@]}" >"$tmp/setup.log" 2>&1 || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
        echo "FAIL configure: meson setup $build failed"
        show_log "$tmp/setup.log" 60
        count_fail 1
        return 1
    fi
    echo "configure: ok ($build${setup_opts[*]:+ ${setup_opts[*]}})"

    # -k 0: build everything that can be built, so that one broken file
    # does not hide the results of tests that do not depend on it.
    if timeout -k 10 3600 ninja -C "$build" -k 0 >"$tmp/build.log" 2>&1; then
        echo "build: ok"
    else
        echo "FAIL build: ninja -C $build reported errors"
        grep -E 'error|FAILED' "$tmp/build.log" | head -n 60 | sed 's/^/    | /'
        count_fail 1
    fi
    return 0
}

# ---------------------------------------------------------------------------
# Unit suite: each test registered with meson in suite 'unit', run one at a
# time so that a test whose program failed to build cannot stop the others.

# Sums the N of every cmocka line "[  WORD  ] N test(s)" in a log.
cmocka_sum()
{
    local word=$1 file=$2
    grep -aoE "^\[  $word  \] [0-9]+ test\(s\)" "$file" |
        awk '{ n += $(NF - 1) } END { print n + 0 }'
}

unit_suite()
{
    section "unit"
    local names p=0 f=0
    if ! names=$(meson test -C "$build" --no-rebuild --suite unit --list 2>"$tmp/list.err"); then
        echo "FAIL unit: cannot list the tests of suite 'unit'"
        show_log "$tmp/list.err"
        count_fail 1
        return
    fi
    names=$(printf '%s\n' "$names" | grep -v -e '^ninja:' -e '^$' || true)
    if [ -z "$names" ]; then
        echo "FAIL unit: suite 'unit' has no tests"
        count_fail 1
        return
    fi

    local name out txt json result np nf cases
    while IFS= read -r name; do
        out=$tmp/unit-out.log
        txt=$build/meson-logs/unit-$name.txt
        json=$build/meson-logs/unit-$name.json
        rm -f "$txt" "$json"
        timeout -k 10 $((900 * meson_timeout_mult)) \
            meson test -C "$build" --no-rebuild --suite unit --print-errorlogs \
            --timeout-multiplier "$meson_timeout_mult" --logbase "unit-$name" "$name" \
            >"$out" 2>&1 </dev/null
        result=MISSING
        if [ -f "$json" ]; then
            result=$(grep -aoE '"result": "[A-Z_]+"' "$json" | head -n 1 | cut -d'"' -f4)
            result=${result:-UNKNOWN}
        fi

        np=0
        nf=0
        cases=0
        if [ -f "$txt" ] && grep -aqE '^\[  (PASSED|FAILED)  \] [0-9]+ test\(s\)' "$txt"; then
            cases=1
            np=$(cmocka_sum PASSED "$txt")
            nf=$(cmocka_sum FAILED "$txt")
        fi

        case "$result" in
        OK)
            if [ "$cases" -eq 0 ]; then
                np=1
            fi
            ;;
        SKIP)
            echo "SKIP unit/$name"
            continue
            ;;
        *)
            # A crash, a timeout, a sanitizer report at exit, or a program
            # that was never built: at least one failure even if every case
            # that ran had passed.
            if [ "$nf" -eq 0 ]; then
                nf=1
            fi
            ;;
        esac

        p=$((p + np))
        f=$((f + nf))
        if [ "$nf" -eq 0 ]; then
            if [ "$cases" -eq 1 ]; then
                echo "PASS unit/$name ($np cases)"
            else
                echo "PASS unit/$name"
            fi
        else
            if [ "$cases" -eq 1 ]; then
                echo "FAIL unit/$name ($nf of $((np + nf)) cases failed; result $result)"
            elif [ "$result" = MISSING ]; then
                echo "FAIL unit/$name (meson could not run it; not built?)"
            else
                echo "FAIL unit/$name (result $result)"
            fi
            sed '/^Summary of Failures:/,$d' "$out" | tail -n 150 | sed 's/^/    | /'
        fi
    done <<<"$names"

    echo "-- unit: $p ok, $f not ok"
    count_pass "$p"
    count_fail "$f"
}

# ---------------------------------------------------------------------------
# Concurrency tester.

sct_p=0
sct_f=0
sct_pass()
{
    echo "PASS sct/$1${2:+: $2}"
    sct_p=$((sct_p + 1))
}
sct_fail()
{
    echo "FAIL sct/$1: $2"
    sct_f=$((sct_f + 1))
}

# First line of $2 starting with $1, cut to a readable length.
first_line()
{
    grep -a -m 1 -E "^$1" "$2" | cut -c 1-240
}

# Names listed by "mt-sct FLAG", one per line (first word; '#' comments and
# blank lines dropped). Fails when the flag is not understood.
sct_list()
{
    local flag=$1 out=$tmp/list.out
    run_bounded "$out" 60 "$sct" "$flag" || return 1
    awk '$1 !~ /^#/ && NF > 0 { print $1 }' "$out"
}

describe_rc()
{
    case "$1" in
    124 | 137) echo "timed out after ${cmd_timeout}s" ;;
    86) echo "sanitizer report (exit 86)" ;;
    *) echo "exit $1" ;;
    esac
}

# A scenario run must exit 0 and print a line starting with OK.
sct_expect_ok()
{
    local label=$1 out=$tmp/sct.out rc=0
    shift
    run_bounded "$out" "$cmd_timeout" "$sct" "$@" || rc=$?
    local ok
    ok=$(first_line 'OK' "$out")
    if [ "$rc" -eq 0 ] && [ -n "$ok" ]; then
        sct_pass "$label" "$ok"
    else
        sct_fail "$label" "expected exit 0 and an OK line; got $(describe_rc "$rc")"
        echo "    \$ ${sct##*/} $*"
        show_log "$out" 40
    fi
}

# A run that must find a violation: exit 1 and a line starting with
# VIOLATION that contains $2 (any text when empty).
sct_expect_violation()
{
    local label=$1 want=$2 out=$tmp/sct.out rc=0
    shift 2
    run_bounded "$out" "$cmd_timeout" "$sct" "$@" || rc=$?
    local v
    v=$(grep -a -E '^VIOLATION' "$out" | grep -a -m 1 -F -e "$want" | cut -c 1-240)
    if [ "$rc" -eq 1 ] && [ -n "$v" ]; then
        sct_pass "$label" "$v"
    else
        local what="a VIOLATION line"
        if [ -n "$want" ]; then
            what="a VIOLATION line mentioning '$want'"
        fi
        sct_fail "$label" "expected exit 1 and $what; got $(describe_rc "$rc")"
        echo "    \$ ${sct##*/} $*"
        show_log "$out" 40
    fi
}

sct_suite()
{
    section "sct (concurrency tester: $sct_iters iterations a scenario and strategy)"
    if [ ! -x "$sct" ]; then
        echo "FAIL sct: tester binary $sct was not built"
        count_fail 1
        return
    fi

    # Scenarios that must pass. Those named broken-* are deliberately wrong
    # and are checked below for the failure they must produce.
    local scenarios s
    if scenarios=$(sct_list --list-scenarios) && [ -n "$scenarios" ]; then
        while IFS= read -r s; do
            case "$s" in
            broken-*) continue ;;
            esac
            for strategy in random pct; do
                sct_expect_ok "scenario $s ($strategy)" --scenario "$s" \
                    --strategy "$strategy" --iterations "$sct_iters" --seed 1
            done
        done <<<"$scenarios"
    else
        sct_expect_ok "scenario default" --iterations "$sct_iters" --seed 1
    fi

    # Every seeded bug must be found. A bug of the control plane is found by
    # the scenario that runs it, which "all" leaves to be run by name.
    local bugs b scenario_of
    if ! bugs=$(sct_list --list-bugs); then
        sct_fail "list-bugs" "mt-sct --list-bugs failed"
        show_log "$tmp/list.out"
    elif [ -z "$bugs" ]; then
        sct_fail "list-bugs" "mt-sct --list-bugs listed no bugs"
    else
        while IFS= read -r b; do
            case "$b" in
            AckBeforeDrain | ClientFollowsAnyVersion | LeaseNotCut) scenario_of=leases ;;
            WriteAfterLosingLead | TakeOverWithoutGrace) scenario_of=failover ;;
            *) scenario_of=all ;;
            esac
            for seed in $bug_seeds; do
                sct_expect_violation "bug $b (seed $seed)" "" --bug "$b" \
                    --scenario "$scenario_of" --iterations "$bug_iters" --seed "$seed"
            done
        done <<<"$bugs"
    fi

    # The same seed must replay the same execution, byte for byte.
    local r1=$tmp/replay1.out r2=$tmp/replay2.out rc1=0 rc2=0
    # (standard output only: a sanitizer's warnings carry the process id)
    timeout -k 10 "$cmd_timeout" "$sct" --replay 12345 --scenario streams \
        --bug QueryStreamedLock >"$r1" 2>/dev/null </dev/null || rc1=$?
    timeout -k 10 "$cmd_timeout" "$sct" --replay 12345 --scenario streams \
        --bug QueryStreamedLock >"$r2" 2>/dev/null </dev/null || rc2=$?
    if [ "$rc1" -eq "$rc2" ] && [ -s "$r1" ] && cmp -s "$r1" "$r2"; then
        sct_pass "replay is deterministic" "$(wc -l <"$r1") identical lines"
    else
        sct_fail "replay is deterministic" "two replays of seed 12345 differ"
    fi

    # The tester must report a lost wake-up as a liveness failure, not as a
    # passing run.
    sct_expect_violation "scenario broken-wakeup" "liveness" \
        --scenario broken-wakeup --iterations 100 --seed 1

    echo "-- sct: $sct_p ok, $sct_f not ok"
    count_pass "$sct_p"
    count_fail "$sct_f"
}

# ---------------------------------------------------------------------------
# End-to-end suite: real SDK clients (test/e2e) against Azurite and against
# the proxy, run by node's test runner with TAP output. Counts are the
# runner's own (# pass / # fail / # cancelled over individual test cases);
# a run that dies without a summary counts as one failure.

e2e_dir=test/e2e

# Installs the pinned packages when they are missing or the lock file is
# newer than the installed tree.
e2e_install()
{
    local stamp=$e2e_dir/node_modules/.package-lock.json
    if [ -f "$stamp" ] && [ ! "$e2e_dir/package-lock.json" -nt "$stamp" ]; then
        return 0
    fi
    echo "npm ci in $e2e_dir"
    (cd "$e2e_dir" && timeout -k 10 900 npm ci --no-audit --no-fund) \
        >"$tmp/e2e-npm.log" 2>&1 </dev/null
}

# The N of the TAP summary line "# WORD N" (0 when absent).
tap_count()
{
    local n
    n=$(grep -aoE "^# $1 [0-9]+" "$2" | tail -n 1 | awk '{ print $3 }')
    echo "${n:-0}"
}

# Per target (top-level describe): a PASS/FAIL/SKIP line; then every failed
# test case with its path and the first line of its error. Suites, whose
# failure only repeats their children's, are left out.
tap_report()
{
    awk '
    function flush(   top, path, i) {
        if (!pending) return
        pending = 0
        top = plevel == 0 ? pname : stack[0]
        if (!(top in seen)) { seen[top] = 1; order[n++] = top }
        if (is_suite) {
            if (plevel == 0 && pskip) why[top] = pwhy
            return
        }
        if (pstatus == "ok") {
            if (pskip) skip[top]++; else pass[top]++
            return
        }
        fail[top]++
        path = ""
        for (i = 0; i < plevel; i++) path = path stack[i] " > "
        failures = failures "    FAIL " path pname "\n"
        if (perr != "") failures = failures "        " perr "\n"
    }
    {
        match($0, /^ */)
        level = int(RLENGTH / 4)
        line = substr($0, RLENGTH + 1)
    }
    line ~ /^# Subtest: / { flush(); stack[level] = substr(line, 12); next }
    line ~ /^(not )?ok [0-9]+ - / {
        flush()
        pending = 1; is_suite = 0; plevel = level; perr = ""; errnext = 0
        pstatus = line ~ /^not ok/ ? "not ok" : "ok"
        name = line
        sub(/^(not )?ok [0-9]+ - /, "", name)
        pskip = name ~ / # SKIP/
        pwhy = name
        sub(/^.* # SKIP ?/, "", pwhy)
        sub(/ # (SKIP|TODO).*$/, "", name)
        pname = name
        next
    }
    pending && line ~ /^type: .suite.$/ { is_suite = 1; next }
    pending && errnext { perr = substr(line, 1, 300); errnext = 0; next }
    pending && line ~ /^error: / {
        v = substr(line, 8)
        if (v ~ /^[|>]-?$/) errnext = 1; else perr = substr(v, 1, 300)
    }
    END {
        flush()
        for (i = 0; i < n; i++) {
            t = order[i]
            if (fail[t] > 0)
                printf "FAIL e2e/%s (%d of %d failed)\n", t, fail[t], pass[t] + fail[t]
            else if (pass[t] > 0)
                printf "PASS e2e/%s (%d cases%s)\n", t, pass[t], skip[t] ? ", " skip[t] " skipped" : ""
            else
                printf "SKIP e2e/%s%s\n", t, (t in why) ? ": " why[t] : ""
        }
        printf "%s", failures
    }' "$1"
}

e2e_suite()
{
    section "e2e (SDK clients against Azurite and mtable-proxy)"
    if [ "${MTABLE_SKIP_E2E:-0}" = 1 ]; then
        echo "SKIP e2e: MTABLE_SKIP_E2E=1"
        return
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "FAIL e2e: node and npm are needed"
        count_fail 1
        return
    fi
    if ! e2e_install; then
        echo "FAIL e2e: npm ci in $e2e_dir failed"
        show_log "$tmp/e2e-npm.log"
        count_fail 1
        return
    fi

    # The proxy of this build (the sanitizer one with --asan) unless told.
    # The plain run puts its old and new tables on Azurite (the production
    # path); the sanitizer run uses the embedded backends, so both are
    # exercised.
    export MTABLE_PROXY_BIN=${MTABLE_PROXY_BIN:-$root/$build/proxy/mtable-proxy}
    if [ "$asan" -eq 1 ]; then
        export MTABLE_E2E_BACKEND=${MTABLE_E2E_BACKEND:-memory}
    else
        export MTABLE_E2E_BACKEND=${MTABLE_E2E_BACKEND:-azurite}
    fi
    local out=$tmp/e2e.tap rc=0 limit=${MTABLE_E2E_TIMEOUT:-1800}
    local t0=$SECONDS
    timeout -k 10 "$limit" node --test --test-reporter=tap "$e2e_dir"/*.test.mjs \
        >"$out" 2>&1 </dev/null || rc=$?

    local p f c s
    p=$(tap_count pass "$out")
    f=$(tap_count fail "$out")
    c=$(tap_count cancelled "$out")
    s=$(tap_count skipped "$out")
    f=$((f + c))
    tap_report "$out"
    if ! grep -aqE '^# pass [0-9]+' "$out"; then
        echo "FAIL e2e: the runner ended without a summary ($(describe_rc "$rc"))"
        show_log "$out" 40
        f=$((f + 1))
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL e2e: node --test exited with $(describe_rc "$rc") but reported no failure"
        show_log "$out" 20
        f=1
    fi
    echo "-- e2e: $p ok, $f not ok, $s skipped ($((SECONDS - t0))s)"
    count_pass "$p"
    count_fail "$f"
}

# ---------------------------------------------------------------------------
# REST cases: the declarative request/response files of test/cases, played
# against a proxy their driver starts. Counts are the TAP summary's pass and
# fail (one per exchange and per /healthz check); skipped files (known
# failures marked "# xfail:") are listed but not counted.

cases_suite()
{
    section "cases (REST request/response cases against mtable-proxy)"
    if [ "${MTABLE_SKIP_CASES:-0}" = 1 ]; then
        echo "SKIP cases: MTABLE_SKIP_CASES=1"
        return
    fi
    if ! command -v node >/dev/null 2>&1; then
        echo "FAIL cases: node is needed"
        count_fail 1
        return
    fi
    local out=$tmp/cases.tap rc=0 t0=$SECONDS
    MTABLE_PROXY_BIN=${MTABLE_PROXY_BIN:-$root/$build/proxy/mtable-proxy} \
        timeout -k 10 900 node --test --test-reporter=tap test/cases/ \
        >"$out" 2>&1 </dev/null || rc=$?

    local p f c s
    p=$(grep -aoE '^# pass [0-9]+' "$out" | tail -n 1 | awk '{ print $3 }')
    f=$(grep -aoE '^# fail [0-9]+' "$out" | tail -n 1 | awk '{ print $3 }')
    c=$(grep -aoE '^# cancelled [0-9]+' "$out" | tail -n 1 | awk '{ print $3 }')
    s=$(grep -aoE '^# skipped [0-9]+' "$out" | tail -n 1 | awk '{ print $3 }')
    p=${p:-0}
    f=$((${f:-0} + ${c:-0}))
    # One line per file that failed or was skipped, then the driver's
    # report (request, diff, response) of each failed exchange.
    grep -aE '^not ok [0-9]+ - ' "$out" | sed -E 's/^not ok [0-9]+ - /FAIL cases\//'
    grep -aE '^ok [0-9]+ - .* # SKIP' "$out" | sed -E 's/^ok [0-9]+ - (.*) # SKIP ?/SKIP cases\/\1: /'
    awk '/^    not ok [0-9]+ - / { on = 1; next }
         on && /^      (stack|code):/ { on = 0 }
         on && /^      \.\.\.$/ { on = 0 }
         on && /^        / { print "    |" substr($0, 8) }' "$out" | head -n 400
    if ! grep -aqE '^# pass [0-9]+' "$out"; then
        echo "FAIL cases: the runner ended without a summary ($(describe_rc "$rc"))"
        show_log "$out" 40
        f=$((f + 1))
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL cases: node --test exited with $(describe_rc "$rc") but reported no failure"
        show_log "$out" 20
        f=1
    fi
    echo "-- cases: $p ok, $f not ok, ${s:-0} skipped ($((SECONDS - t0))s)"
    count_pass "$p"
    count_fail "$f"
}

# ---------------------------------------------------------------------------
# Image smoke test: docker/smoke.sh builds docker/Dockerfile with podman on a
# debootstrap-made base image and runs it (health, readiness, a signed
# request, non-root, the HEALTHCHECK, a clean stop). Its PASS and FAIL lines
# are counted; a run that ends without its summary line counts as one
# failure. Only MTABLE_SKIP_IMAGE=1 skips it.

image_suite()
{
    section "image (docker/smoke.sh: podman build and run of docker/Dockerfile)"
    if [ "${MTABLE_SKIP_IMAGE:-0}" = 1 ]; then
        echo "SKIP image: MTABLE_SKIP_IMAGE=1"
        return
    fi
    local out=$tmp/image.log rc=0 t0=$SECONDS
    timeout -k 10 1800 bash docker/smoke.sh >"$out" 2>&1 </dev/null || rc=$?
    grep -aE '^(PASS|FAIL) image|^    \|' "$out"
    local p f
    p=$(grep -acE '^PASS image/' "$out")
    f=$(grep -acE '^FAIL image/' "$out")
    if ! tail -n 1 "$out" | grep -qE '^[0-9]+ passed, [0-9]+ failed$'; then
        echo "FAIL image: docker/smoke.sh ended without its summary ($(describe_rc "$rc"))"
        show_log "$out" 30
        f=$((f + 1))
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL image: docker/smoke.sh exited with $(describe_rc "$rc") but reported no failure"
        f=1
    fi
    echo "-- image: $p ok, $f not ok ($((SECONDS - t0))s)"
    count_pass "$p"
    count_fail "$f"
}

# ---------------------------------------------------------------------------

if setup; then
    # Node.js 18 (Debian 12's) needs a flag for the Azure SDK; no-op otherwise.
    # shellcheck source=scripts/node-env.sh
    . scripts/node-env.sh
    # The end-to-end packages bring Azurite, which the Azure client's unit
    # test needs too; install them first (a failure is reported by e2e).
    if [ "${MTABLE_SKIP_E2E:-0}" != 1 ] && command -v npm >/dev/null 2>&1; then
        e2e_install || true
    fi
    unit_suite
    sct_suite
    e2e_suite
    cases_suite
    image_suite
fi

if [ $((total_pass + total_fail)) -eq 0 ]; then
    echo "FAIL: no test ran"
    total_fail=1
fi
echo
printf '%d passed, %d failed\n' "$total_pass" "$total_fail"
[ "$total_fail" -eq 0 ]
