#!/bin/sh
# check_format.sh SOURCE_ROOT -- what changed in the C sources matches
# .clang-format.
#
# Every line of a .c or .h file added or changed since the commit recorded
# in test/unit/format-base.txt must be as clang-format 14 formats it with
# the repository's .clang-format (clang-format-diff over `git diff`), and
# so must every file git does not track yet. Lines nobody touched since are
# left as they are, so the check never asks for a reformatting commit that
# would collide with other branches. Without git history that holds the
# recorded commit, every C file is checked whole except those the list
# names as unformatted at that commit. Prints TAP: one line for the check.
#
# To fix a failure: clang-format-14 -i FILE (or apply the diff shown).

set -u

root=${1:?usage: check_format.sh SOURCE_ROOT}
list=$root/test/unit/format-base.txt

echo "TAP version 13"
echo "1..1"
fmt=
for c in clang-format-14 clang-format; do
    if command -v "$c" >/dev/null 2>&1 && "$c" --version | grep -q 'version 14\.'; then
        fmt=$c
        break
    fi
done
fmtdiff=$(command -v clang-format-diff-14 || command -v clang-format-diff || true)
if [ -z "$fmt" ] || [ -z "$fmtdiff" ]; then
    echo "not ok 1 - clang-format 14 is not installed (docker/install-deps.sh installs it)"
    exit 1
fi

base=$(sed -n 's/^base \([0-9a-f]*\)$/\1/p' "$list")
legacy=$(grep -v '^#' "$list" | grep -v '^base ')
cd "$root" || exit 1
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT

# A whole file against clang-format; appends the diff to $out.
whole()
{
    "$fmt" --style=file "$1" | diff -u "$1" - | sed "s|^--- $1|--- $1 (as it is)|" >>"$out"
}

if git rev-parse --verify --quiet "$base^{commit}" >/dev/null 2>&1; then
    how="lines changed since $(echo "$base" | cut -c1-7)"
    git diff -U0 --no-color "$base" -- '*.c' '*.h' |
        "$fmtdiff" -p1 -style=file -binary "$fmt" >>"$out" 2>&1
    for f in $(git ls-files --others --exclude-standard -- '*.c' '*.h'); do
        whole "$f"
    done
else
    how="every file but the $(echo "$legacy" | wc -l) listed as unformatted (no git history)"
    for f in $(find . -name node_modules -prune -o -path './build*' -prune -o \
        \( -name '*.c' -o -name '*.h' \) -print | sed 's|^\./||' | sort |
        grep -vxF "$legacy"); do
        whole "$f"
    done
fi

if [ -s "$out" ]; then
    sed 's/^/# /' "$out" | head -200
    echo "not ok 1 - C sources ($how) do not match .clang-format"
    exit 1
fi
echo "ok 1 - C sources ($how) match .clang-format"
exit 0
