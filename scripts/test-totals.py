#!/usr/bin/env python3
"""scripts/test-totals.py -- counts of one `meson test` run, for scripts/test.sh.

    test-totals.py LOG.json

Reads the JSON log meson wrote (meson-logs/<logbase>.json) and prints one
line per test, PASS, FAIL or SKIP, then for each failed test the tail of its
output, and last "TOTALS <passed> <failed>". Counts are of individual cases:
a cmocka program's "[  PASSED  ] N test(s)", a node test runner's "# pass N"
(TAP summary), a TAP program's "ok" lines; any other test counts as one.

A test meson ran but did not pass counts at least one failure, even if all
the cases it reported passed (a crash at exit, a timeout, a sanitizer
report). A skip counts as a failure unless it is listed with its reason:
a TAP "# SKIP reason" line, or a "SKIP: reason" line of a cmocka program.
A TAP "# TODO reason" (a REST case marked xfail that failed as described)
is listed, with its reason, and counted neither way.
"""
import json
import re
import sys


def tap_cases(out):
    """(passed, failed, skips, todos) of a TAP stream, top level and nested."""
    p = f = 0
    skips, todos = [], []
    summary = {}
    for line in out.splitlines():
        m = re.match(r"^# (pass|fail|cancelled|skipped|todo) (\d+)$", line)
        if m:
            summary[m.group(1)] = int(m.group(2))
        m = re.match(r"^(\s*)(not ok|ok) \d+ - (.*)$", line)
        if not m:
            continue
        name = m.group(3)
        sm = re.search(r" # (SKIP|TODO)\b ?(.*)$", name, re.I)
        if sm and sm.group(1).upper() == "SKIP":
            skips.append((name[: sm.start()], sm.group(2).strip()))
        elif sm:
            todos.append((name[: sm.start()], sm.group(2).strip(), m.group(2)))
        elif not m.group(1):
            if m.group(2) == "ok":
                p += 1
            else:
                f += 1
    if "pass" in summary:  # node's runner: its own totals of leaf tests
        p = summary["pass"]
        f = summary.get("fail", 0) + summary.get("cancelled", 0)
    return p, max(f, 0), skips, todos


def cmocka_cases(out):
    def total(word):
        return sum(int(n) for n in re.findall(rf"^\[  {word}  \] (\d+) test\(s\)", out, re.M))

    skipped = re.findall(r"^\[  SKIPPED \] (.*)$", out, re.M)
    reasons = re.findall(r"^SKIP: (.*)$", out, re.M)
    return total("PASSED"), total("FAILED"), [(s, "; ".join(reasons)) for s in skipped]


def main():
    passed = failed = 0
    failures = []
    with open(sys.argv[1], encoding="utf-8", errors="replace") as log:
        runs = [json.loads(line) for line in log if line.strip()]
    for run in runs:
        name = run["name"].split(":", 1)[-1].replace(" / ", "/")
        out = (run.get("stdout") or "") + (run.get("stderr") or "")
        result = run["result"]
        skips, todos = [], []
        if re.search(r"^\[  (PASSED|FAILED)  \] \d+ test\(s\)", out, re.M):
            p, f, skips = cmocka_cases(out)
        elif re.search(r"^(not ok|ok) \d+ - |^# pass \d+$", out, re.M):
            p, f, skips, todos = tap_cases(out)
        else:
            p, f = (1, 0) if result == "OK" else (0, 0)
        if result == "SKIP":
            reason = re.findall(r"^SKIP:? (.*)$", out, re.M)
            skips.append(("", reason[0] if reason else ""))
        elif result != "OK" and f == 0:
            f = 1
        unexplained = [s for s in skips if not s[1]]
        f += len(unexplained)
        for s, why in skips:
            print(f"SKIP {name}{'/' + s if s else ''}: {why or 'no reason given (counted as a failure)'}")
        for t, why, _ in todos:
            print(f"XFAIL {name}/{t}: {why}")
        extra = f", {len(skips)} skipped" if skips else ""
        if f:
            print(f"FAIL {name} ({f} of {p + f} failed; meson result {result})")
            failures.append((name, out))
        else:
            print(f"PASS {name} ({p} case{'s' if p != 1 else ''}{extra})")
        passed += p
        failed += f
    for name, out in failures:
        lines = out.splitlines()
        # A TAP stream: each failed leaf test with its error; otherwise the
        # output's tail.
        leaves = [i for i, l in enumerate(lines) if re.match(r"^\s*not ok \d+ - ", l)
                  and not any("type: 'suite'" in x for x in lines[i + 1:i + 8])
                  and " # TODO" not in l]
        print(f"--- {name}: " + ("failed cases" if leaves else "last lines of its output"))
        if leaves:
            for i in leaves[:40]:
                print("    | " + lines[i].strip()[:300])
                for x in lines[i + 1:i + 30]:
                    if re.match(r"^\s*(error|# \$|# \|)", x):
                        print("    |     " + x.strip()[:300])
        else:
            for line in lines[-60:]:
                print("    | " + line[:300])
    if not runs:
        print("FAIL: meson ran no test")
        failed += 1
    print(f"TOTALS {passed} {failed}")


if __name__ == "__main__":
    main()
