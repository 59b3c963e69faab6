#!/usr/bin/env bash
# scripts/fresh-debian.sh -- run the README's two commands on a freshly
# bootstrapped Debian 12, as on a new user's machine.
#
#   scripts/fresh-debian.sh DIR
#
# Needs root, a Debian host (debootstrap is installed when missing) and the
# network to a Debian mirror and the npm registry. DIR must be absent or
# empty; it is left in place afterwards for inspection (remove it with
# `rm -rf DIR`: nothing stays mounted in it).
#
# Steps:
#   1. debootstrap --variant=minbase bookworm DIR, from the Debian mirror the
#      host's apt is configured with (MTABLE_DEBIAN_MIRROR overrides);
#   2. a clean clone of this repository's committed HEAD in DIR/root/mtable
#      (no build directory, no node_modules, nothing uncommitted);
#   3. in a private mount namespace, with DIR/proc, DIR/sys and DIR/dev
#      mounted as on a booted machine (and unmounted on exit), chroot into
#      DIR and run, as root from the clone:
#      scripts/test.sh (it installs the Debian packages, Debian's own
#      Node.js 18 among them, builds and runs every suite), then
#      scripts/run.sh in the background, checked by an unsigned request to
#      http://127.0.0.1:10002/devstoreaccount1/Tables, which must answer 403
#      AuthenticationFailed, and by GET /healthz on the admin port 10090;
#      the proxy is then stopped.
#
# The root's network is the host's, so ports 10002 and 10090 must be free,
# and certificate authorities added on the host
# (/usr/local/share/ca-certificates) are copied into the root.
# The chroot starts with a clean environment; MTABLE_* variables pass
# through (MTABLE_SCT_ITERATIONS=500 MTABLE_SCT_BUG_SEEDS=1 make the
# concurrency tester's share shorter). The last line is "fresh-debian: ok"
# or "fresh-debian: FAIL ..."; the exit status is 0 exactly on ok.

set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self="$root/scripts/fresh-debian.sh"

die()
{
    echo "fresh-debian: FAIL $*"
    exit 1
}

# The first Debian archive URI of the host's apt sources (deb822 or
# one-line format), not the security archive.
host_mirror()
{
    local f uri
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(grep -hoE '(^URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z]+://[^[:space:]]+' "$f" |
            grep -oE '[a-z]+://[^[:space:]]+' | grep -v -e security -e nodesource | head -n 1)
        if [ -n "$uri" ]; then
            echo "$uri"
            return 0
        fi
    done
    echo "http://deb.debian.org/debian"
}

# Whether something listens on 127.0.0.1:$1.
port_busy()
{
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------
# Inside the private mount namespace: mount, chroot, run, unmount.

in_namespace()
{
    local dir=$1
    # shellcheck disable=SC2064 # $dir is meant to be expanded now
    trap "umount -R '$dir/dev' 2>/dev/null; umount '$dir/proc' '$dir/sys' 2>/dev/null" EXIT
    mount -t proc proc "$dir/proc" || die "cannot mount $dir/proc"
    mount -t sysfs sysfs "$dir/sys" || die "cannot mount $dir/sys"
    mount --rbind /dev "$dir/dev" || die "cannot mount $dir/dev"
    mount --make-rslave "$dir/dev"

    # A clean environment, but for the project's own settings.
    local envs=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive)
    local v
    for v in $(compgen -e); do
        case "$v" in
        MTABLE_*) envs+=("$v=${!v}") ;;
        esac
    done
    run_in()
    {
        chroot "$dir" /usr/bin/env -i "${envs[@]}" /bin/bash -c "cd /root/mtable && $1"
    }

    echo "== scripts/test.sh (in the fresh root)"
    local t0=$SECONDS rc=0
    run_in 'scripts/test.sh </dev/null' 2>&1 | tee "$dir/root/test.log"
    rc=${PIPESTATUS[0]}
    echo "-- scripts/test.sh: exit $rc after $((SECONDS - t0))s"
    local summary
    summary=$(tail -n 1 "$dir/root/test.log")

    echo "== scripts/run.sh (in the fresh root)"
    setsid chroot "$dir" /usr/bin/env -i "${envs[@]}" /bin/bash -c \
        'cd /root/mtable && exec scripts/run.sh' >"$dir/root/run.log" 2>&1 </dev/null &
    local pid=$! up=0 _
    for _ in $(seq 1 600); do
        if port_busy 10002 && port_busy 10090; then
            up=1
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    local status="" body="" health=""
    if [ "$up" -eq 1 ]; then
        status=$(curl -s -o "$dir/root/unsigned.body" -w '%{http_code}' \
            -H 'Accept: application/json;odata=nometadata' \
            http://127.0.0.1:10002/devstoreaccount1/Tables)
        body=$(cat "$dir/root/unsigned.body" 2>/dev/null)
        health=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:10090/healthz)
        echo "GET /devstoreaccount1/Tables unsigned: $status $body"
        echo "GET :10090/healthz: $health"
    else
        echo "the proxy did not start listening; its output:"
        tail -n 30 "$dir/root/run.log" | sed 's/^/    | /'
    fi
    kill -TERM -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null

    local fails=()
    if [ "$rc" -ne 0 ]; then
        fails+=("scripts/test.sh exited $rc ($summary)")
    fi
    if [ "$up" -ne 1 ]; then
        fails+=("scripts/run.sh did not serve ports 10002 and 10090")
    elif [ "$status" != 403 ] || [[ "$body" != *AuthenticationFailed* ]]; then
        fails+=("an unsigned request got '$status $body', not 403 AuthenticationFailed")
    elif [ "$health" != 200 ]; then
        fails+=("/healthz answered '$health'")
    fi
    if [ "${#fails[@]}" -ne 0 ]; then
        local IFS=';'
        die "${fails[*]}"
    fi
    echo "fresh-debian: ok ($summary; run.sh served 10002 and 10090)"
}

if [ "${1:-}" = --in-namespace ]; then
    in_namespace "$2"
    exit $?
fi

# ---------------------------------------------------------------------------
# On the host.

case "${1:-}" in
-h | --help | "")
    sed -n '2,/^$/p' "$0" | sed -e '/^$/d' -e 's/^# \{0,1\}//'
    [ -n "${1:-}" ]
    exit $?
    ;;
esac
dir=$1
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mount, chroot)"
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    die "$dir exists and is not empty"
fi
mkdir -p "$dir" || die "cannot create $dir"
dir=$(cd "$dir" && pwd)
for p in 10002 10090; do
    port_busy "$p" && die "port $p is in use on this machine; the fresh root needs it"
done

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v git >/dev/null 2>&1 || need+=(git)
if [ "${#need[@]}" -ne 0 ]; then
    echo "== apt-get install ${need[*]} (on the host)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get -q update ||
        ! DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${need[@]}"; then
        die "cannot install ${need[*]}"
    fi
fi

mirror=${MTABLE_DEBIAN_MIRROR:-$(host_mirror)}
echo "== debootstrap --variant=minbase bookworm $dir $mirror"
t0=$SECONDS
debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 ||
    { tail -n 20 "$dir.debootstrap.log"; die "debootstrap failed (log: $dir.debootstrap.log)"; }
echo "-- debootstrap: $((SECONDS - t0))s"

# What a new machine has besides the base system: its updates, name
# resolution, and no daemons started by package scripts.
cat >"$dir/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
EOF
cp /etc/resolv.conf /etc/hosts "$dir/etc/"
# The root reaches the network through the host: certificate authorities
# the host's administrator added (a TLS-inspecting proxy's, say) go along,
# and the ca-certificates package adds them to the root's store when
# install-deps.sh installs it.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p "$dir/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
fi
printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
chmod +x "$dir/usr/sbin/policy-rc.d"

echo "== git clone $(git -C "$root" rev-parse --short HEAD) into $dir/root/mtable"
git clone -q --no-hardlinks "$root" "$dir/root/mtable" || die "git clone failed"

unshare --mount --propagation private -- bash "$self" --in-namespace "$dir"
