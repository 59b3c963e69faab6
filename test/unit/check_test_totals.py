#!/usr/bin/env python3
"""check_test_totals.py -- scripts/test-totals.py counts honestly.

    check_test_totals.py TEST_TOTALS_PY

Feeds test-totals.py meson JSON logs made up of the outputs it must read
(cmocka, node's TAP, a TAP program, a plain test) and checks each verdict
and the totals: cases are counted one by one, a test meson saw fail counts
even when its cases passed, a skip without a reason is a failure, a TODO
(an xfail REST case) counts neither way.
"""
import json
import os
import subprocess
import sys
import tempfile

SCRIPT = sys.argv[1]


def run(*tests):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        for name, result, out in tests:
            f.write(json.dumps({"name": "mtable:" + name, "result": result, "stdout": out}) + "\n")
    try:
        p = subprocess.run([sys.executable, SCRIPT, f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    lines = p.stdout.splitlines()
    assert p.returncode == 0, p.stderr
    assert lines and lines[-1].startswith("TOTALS "), p.stdout
    _, passed, failed = lines[-1].split()
    return int(passed), int(failed), lines


failures = 0
count = 0


def check(label, got, want):
    global failures, count
    count += 1
    if got != want:
        failures += 1
        print(f"not ok {count} - {label}: got {got}, want {want}")
    else:
        print(f"ok {count} - {label}")


CMOCKA_OK = "[==========] 3 test(s) run.\n[  PASSED  ] 3 test(s).\n"
CMOCKA_FAIL = "[  PASSED  ] 2 test(s).\n[  FAILED  ] 1 test(s), listed below:\n"
NODE = ("ok 1 - a\nnot ok 2 - b\nok 3 - c # SKIP Azurite differs\n"
        "ok 4 - d # TODO xfail: known (exchange 2 still fails)\n"
        "# tests 4\n# pass 1\n# fail 1\n# cancelled 0\n# skipped 1\n# todo 1\n")
SCT = "ok 1 - scenario x\nok 2 - scenario y\nnot ok 3 - bug z\n1..3\n"

check("cmocka cases counted", run(("unit / a", "OK", CMOCKA_OK))[:2], (3, 0))
check("cmocka failures counted", run(("unit / a", "FAIL", CMOCKA_FAIL))[:2], (2, 1))
check("a crash after passing cases is a failure",
      run(("unit / a", "FAIL", CMOCKA_OK))[:2], (3, 1))
check("node TAP: pass and fail from its summary, listed skip and TODO not counted",
      run(("e2e / e2e", "FAIL", NODE))[:2], (1, 1))
check("TAP program lines counted", run(("sct / s", "FAIL", SCT))[:2], (2, 1))
check("a plain test counts one", run(("unit / p", "OK", ""))[:2], (1, 0))
check("a timeout with no output is a failure", run(("unit / p", "TIMEOUT", ""))[:2], (0, 1))
check("a skip with its reason is listed, not counted",
      run(("unit / s", "SKIP", "SKIP: no promtool\n"))[:2], (0, 0))
check("a skip without a reason is a failure", run(("unit / s", "SKIP", ""))[:2], (0, 1))
check("a TAP skip without a reason is a failure",
      run(("cases / c", "OK", "ok 1 - a\nok 2 - b # SKIP\n# pass 1\n# fail 0\n"))[:2], (1, 1))
check("a cmocka skip without a reason is a failure",
      run(("unit / a", "OK", CMOCKA_OK + "[  SKIPPED ] test_x\n"))[:2], (3, 1))
_, _, lines = run(("e2e / e2e", "FAIL", NODE))
check("the TODO is listed with its reason",
      any(l.startswith("XFAIL e2e/e2e/d: xfail: known") for l in lines), True)
check("the failed case is named", any("not ok 2 - b" in l for l in lines), True)
check("no test at all is a failure", run()[:2], (0, 1))
print(f"1..{count}")
sys.exit(1 if failures else 0)
