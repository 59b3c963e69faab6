#!/usr/bin/env python3
"""check_import_graph.py -- the call graph between source files has no cycle.

Reads the symbol tables of static libraries with nm: a file that uses a
symbol another file defines depends on that file, a library that uses a
symbol of another library depends on it. The libraries must form a graph
without cycles (the Azure client never calls back into the proxy, the
wire library never into the client), and so must the files of each
library named with --files (the proxy: the listener calls the handlers,
the handlers call the reply helpers, never back), so that every file can
be read and tested knowing only what it depends on.

Usage: check_import_graph.py [--files LIB.a]... [LIB.a]...
Prints TAP: one test for each --files library, one for the libraries
together.
"""
import re
import subprocess
import sys


# "lib.a:dir/member.o:0000000000000000 T name" (thin or plain archives)
LINE = re.compile(r"^.*?:([^:]+\.o):[0-9a-fA-F ]*\s([A-Za-z])\s(\S+)$")


def symbols(lib):
    """{member: (defined, undefined)} of one archive."""
    out = subprocess.run(["nm", "-A", lib], check=True, capture_output=True, text=True).stdout
    members = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        member, kind, name = m.group(1).rsplit("/", 1)[-1], m.group(2), m.group(3)
        d, u = members.setdefault(member, (set(), set()))
        if kind == "U":
            u.add(name)
        elif kind in "TDBRCGSV":
            d.add(name)
    return members


def cycles(edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def member_name(m):
    """px_server.c.o -> px_server.c"""
    return m[:-2] if m.endswith(".o") else m


def main(args):
    libs, strict = [], set()
    it = iter(args)
    for a in it:
        if a == "--files":
            a = next(it)
            strict.add(a)
        libs.append(a)
    per_lib = {lib: symbols(lib) for lib in libs}
    owner = {}  # symbol -> (lib, member)
    for lib, members in per_lib.items():
        for m, (d, _) in members.items():
            for s in d:
                owner.setdefault(s, (lib, m))
    print("TAP version 13")
    print(f"1..{len(strict) + 1}")
    failed = 0
    lib_edges = {}
    i = 0
    for lib in libs:
        edges = {}
        for m, (_, u) in per_lib[lib].items():
            edges.setdefault(m, set())
            for s in u:
                if s not in owner:
                    continue
                olib, om = owner[s]
                if olib == lib and om != m:
                    edges[m].add(om)
                elif olib != lib:
                    lib_edges.setdefault(lib, set()).add(olib)
        if lib not in strict:
            continue
        i += 1
        found = cycles(edges)
        name = lib.rsplit("/", 1)[-1]
        if found:
            failed += 1
            print(f"not ok {i} - {name}: files call each other in a cycle")
            for comp in found:
                print("# cycle: " + " <-> ".join(member_name(c) for c in comp))
                for a in comp:
                    for b in sorted(edges[a] & set(comp)):
                        print(f"#   {member_name(a)} -> {member_name(b)}")
        else:
            print(f"ok {i} - {name}: no cycle between its {len(edges)} files")
    found = cycles(lib_edges)
    n = len(strict) + 1
    if found:
        failed += 1
        print(f"not ok {n} - the libraries depend on each other in a cycle")
        for comp in found:
            print("# cycle: " + " <-> ".join(c.rsplit("/", 1)[-1] for c in comp))
    else:
        print(f"ok {n} - no cycle between the {len(libs)} libraries")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
