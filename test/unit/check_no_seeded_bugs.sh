#!/bin/sh
# check_no_seeded_bugs.sh BUGS_HEADER SEEDED_LIB PRODUCTION_LIB...
#
# Proves that the production libraries (the core, and the control plane
# whose lease code holds seeded bugs too) carry no seeded-bug code.
#
# The seeded bugs (core/mt_bugs.h) exist only when the core is compiled with
# MT_SEEDED_BUGS; production builds define MT_BUG(name) as 0 so the compiler
# drops every seeded path. This check looks at the built artifacts rather than
# the sources, so it also catches a seeded path that slips past the macro:
#
#   - no production library may define or reference the symbols
#     mt_seeded_bug and mt_seeded_bug_name;
#   - no bug name may appear among their strings;
#   - as a control, the seeded library must reference mt_seeded_bug and hold
#     every bug name, or the checks above would prove nothing.
#
# The bug names are read from the one list, MT_BUG_LIST in BUGS_HEADER
# (core/mt_bugs.h). Exits 0 when all hold, 1 with a message per problem
# otherwise.

set -u

if [ "$#" -lt 3 ]; then
    echo "usage: $0 BUGS_HEADER SEEDED_LIB PRODUCTION_LIB..." >&2
    exit 2
fi
header=$1
seeded=$2
shift 2

# The names of the seeded bugs: the X(Name, scenario) lines of MT_BUG_LIST.
BUG_NAMES=$(sed -n 's/^ *X(\([A-Za-z0-9]*\),.*/\1/p' "$header")
if [ -z "$BUG_NAMES" ]; then
    echo "FAIL: no bug names found in $header (MT_BUG_LIST)" >&2
    exit 1
fi
BUG_SYMBOLS="mt_seeded_bug mt_seeded_bug_name"

failures=0
fail()
{
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

for tool in nm strings ar; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: '$tool' not found (install binutils)" >&2
        exit 1
    fi
done
for lib in "$seeded" "$@"; do
    if [ ! -r "$lib" ]; then
        echo "FAIL: cannot read library '$lib' (was it built?)" >&2
        exit 1
    fi
done

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# nm prints "[value] TYPE name" per symbol and "member.o:" per archive
# member; keep "TYPE name" and drop the rest.
symbols()
{
    nm "$1" 2>"$tmp/nm.err" | awk 'NF >= 2 { print $(NF - 1), $NF }'
}
# The strings of a library. Meson builds thin archives, which hold only
# paths to their members, so read the members' contents through ar.
lib_strings()
{
    if ar t "$1" >/dev/null 2>&1; then
        ar p "$1" | strings -a
    fi
    strings -a "$1"
}

if ! symbols "$seeded" >"$tmp/seeded.sym" || [ ! -s "$tmp/seeded.sym" ]; then
    fail "nm found no symbols in $seeded: $(cat "$tmp/nm.err")"
fi
lib_strings "$seeded" >"$tmp/seeded.str"

for prod in "$@"; do
    if ! symbols "$prod" >"$tmp/prod.sym" || [ ! -s "$tmp/prod.sym" ]; then
        fail "nm found no symbols in $prod: $(cat "$tmp/nm.err")"
    fi
    lib_strings "$prod" >"$tmp/prod.str"
    # 1. The production library neither defines nor references the bug symbols.
    for sym in $BUG_SYMBOLS; do
        hits=$(awk -v s="$sym" '$2 == s { print $1 }' "$tmp/prod.sym" | sort -u | tr '\n' ' ')
        if [ -n "$hits" ]; then
            fail "production library $prod has symbol $sym (nm type: $hits)"
        fi
    done
    # 2. No bug name among the production library's strings.
    for name in $BUG_NAMES; do
        if grep -qF -- "$name" "$tmp/prod.str"; then
            fail "production library $prod contains the string '$name'"
        fi
    done
done

# 3. Control: the seeded library really carries seeded code. An undefined
# reference ("U") shows that some core code tests MT_BUG(...), not merely
# that bugs.c was linked in.
if ! awk '$1 == "U" && $2 == "mt_seeded_bug" { found = 1 } END { exit !found }' \
    "$tmp/seeded.sym"; then
    fail "control: seeded library $seeded does not reference mt_seeded_bug;" \
        "either no core code uses MT_BUG() or this check cannot see it"
fi
if ! awk '$1 != "U" && $2 == "mt_seeded_bug" { found = 1 } END { exit !found }' \
    "$tmp/seeded.sym"; then
    fail "control: seeded library $seeded does not define mt_seeded_bug"
fi
for name in $BUG_NAMES; do
    if ! grep -qF -- "$name" "$tmp/seeded.str"; then
        fail "control: seeded library $seeded lacks the string '$name'" \
            "(mt_seeded_bug_name should return it)"
    fi
done

if [ "$failures" -ne 0 ]; then
    echo "no_seeded_bugs: $failures problem(s) found" >&2
    exit 1
fi
nnames=0
for name in $BUG_NAMES; do
    nnames=$((nnames + 1))
done
echo "no_seeded_bugs: $# production libraries are free of seeded-bug code" \
    "(checked 2 symbols and $nnames names; controls hold)"
exit 0
