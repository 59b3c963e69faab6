#!/usr/bin/env python3
"""test/mutants/mutant.py -- reads mutants.txt and applies one mutant.

    mutant.py LIST names                 the mutants' names, one a line
    mutant.py LIST field NAME FIELD      one field (file, kill, why, ...)
    mutant.py LIST apply NAME TREE       applies NAME to the copy at TREE,
                                         keeping the original as FILE.orig
    mutant.py LIST revert NAME TREE      puts FILE.orig back

apply exits 3 when the search string does not occur exactly once.
"""
import os
import sys

FIELDS = ("file", "find", "replace", "kill", "why")


def parse(path):
    mutants, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = line[1:-1]
                if cur in mutants:
                    sys.exit(f"{path}:{n}: mutant {cur} twice")
                mutants[cur] = {}
                continue
            key, sep, value = line.partition(": ")
            if cur is None or not sep or key not in FIELDS:
                sys.exit(f"{path}:{n}: expected one of {', '.join(FIELDS)}")
            mutants[cur][key] = value.replace("\\n", "\n") if key in ("find", "replace") else value
    for name, m in mutants.items():
        missing = [k for k in FIELDS if k not in m]
        if missing:
            sys.exit(f"{path}: mutant {name} lacks {', '.join(missing)}")
    return mutants


def main():
    mutants = parse(sys.argv[1])
    cmd = sys.argv[2]
    if cmd == "names":
        print("\n".join(mutants))
        return
    m = mutants[sys.argv[3]]
    if cmd == "field":
        print(m[sys.argv[4]])
        return
    path = os.path.join(sys.argv[4], m["file"])
    if cmd == "revert":
        # Written anew, not renamed: the file must be newer than the
        # mutant's objects so that the next build recompiles it.
        with open(path + ".orig", encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.remove(path + ".orig")
        return
    with open(path, encoding="utf-8") as f:
        text = f.read()
    count = text.count(m["find"])
    if count != 1:
        print(f"{m['file']}: the search string occurs {count} times", file=sys.stderr)
        sys.exit(3)
    with open(path + ".orig", "w", encoding="utf-8") as f:
        f.write(text)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(m["find"], m["replace"]))


if __name__ == "__main__":
    main()
