#!/usr/bin/env bash
# docker/smoke.sh -- build the mtable image with podman and check that it
# runs as it should.
#
#   bash docker/smoke.sh            (from anywhere; as root)
#
# No container registry is reachable, so the base image is made here: a
# Debian 12 root file system from debootstrap (minbase, trimmed the way
# debian:12-slim is), imported into podman, and passed to docker/Dockerfile
# as BASE_IMAGE. The base tarball and podman's storage (with the build's
# layer cache) live in one directory that is kept across runs, so a second
# run reuses both and rebuilds only what the sources changed.
#
# Missing tools (podman, runc, debootstrap, node, curl), a run as non-root
# or a failed debootstrap are one FAIL line (image/tools, image/base), never
# a skip. Intermediate images left by builds of older sources are pruned
# once they are a week old.
#
# Then, in order, each step printed as PASS or FAIL image/NAME:
#   build        podman build --format docker (the OCI format drops HEALTHCHECK)
#   size         the image's size, printed (no threshold)
#   start        the container answers GET /healthz
#   healthz      GET /healthz is 200
#   readyz       GET /readyz is 200
#   signed       a Shared Key signed request, as an SDK signs it: create a
#                table, insert an entity, read it back (docker/signed-request.mjs)
#   non-root     the container's process 1 (mtable-proxy) runs as uid 10001
#   healthcheck  podman healthcheck run exits 0 (the Dockerfile's HEALTHCHECK)
#   stop         podman stop (SIGTERM) ends it with exit code 0 within 5 s
# and last the line "N passed, N failed". Exit status 0 exactly when every
# step passed. The container and the image it built are removed at the end,
# whatever happened; the base image and the layer cache stay.
#
# Networking: the build and the container use the host's network (no
# bridge, no port mapping), so nothing beyond podman and runc is needed; the
# container listens on two free loopback ports.
#
# Environment:
#   MTABLE_IMAGE_CACHE   the cache directory (/var/tmp/mtable-image-cache)
#   MTABLE_DEBIAN_MIRROR the Debian mirror for debootstrap and the base
#                        image's apt (http://deb.debian.org/debian)
#   MTABLE_SMOKE_KEEP=1  keep the container and image (to look at them)

set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2

cache=${MTABLE_IMAGE_CACHE:-/var/tmp/mtable-image-cache}
mirror=${MTABLE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# Bumped whenever make_base changes, so that a cached base is remade.
base_rev=3
base=localhost/mtable-base:$suite-$base_rev
image=localhost/mtable:smoke-$$
ctr=mtable-smoke-$$

passed=0
failed=0
pass()
{
    echo "PASS image/$1${2:+: $2}"
    passed=$((passed + 1))
}
fail()
{
    echo "FAIL image/$1: $2"
    failed=$((failed + 1))
}
finish()
{
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtable-smoke.XXXXXX") || exit 2
cleanup()
{
    if [ "${MTABLE_SMOKE_KEEP:-0}" != 1 ] && command -v podman >/dev/null 2>&1; then
        podman rm -f -t 0 "$ctr" >/dev/null 2>&1
        podman rmi -f "$image" >/dev/null 2>&1
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# Prints the tail of a log, indented.
show_log()
{
    tail -n "${2:-30}" "$1" | sed 's/^/    | /'
}

# ---------------------------------------------------------------------------
# Tools and podman's configuration.

missing=()
for tool in podman runc debootstrap node curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -ne 0 ]; then
    fail tools "not installed: ${missing[*]} (bash docker/install-deps.sh installs them)"
    finish
fi
if [ "$(id -u)" -ne 0 ]; then
    fail tools "run as root (debootstrap and podman's storage under $cache)"
    finish
fi

mkdir -p "$cache/storage" "$cache/run"
# runc: crun refuses some cgroup layouts that runc accepts; cgroupfs and a
# file event log because there may be no systemd; ulimits within what an
# unprivileged container host grants.
cat >"$cache/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
# A storage of our own, so the layer cache survives and nothing else's
# images are touched.
cat >"$cache/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$cache/storage"
runroot = "$cache/run"
EOF
export CONTAINERS_CONF=$cache/containers.conf
export CONTAINERS_STORAGE_CONF=$cache/storage.conf

# Cache entries of builds of earlier sources: intermediate images left over
# for more than a week.
podman image prune -f --filter until=168h >/dev/null 2>&1 || true

# ---------------------------------------------------------------------------
# The base image: debootstrap once, then imported from the tarball.

base_tar=$cache/base-$suite-$base_rev.tar
make_base()
{
    local rootfs=$tmp/rootfs
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
        return 1
    # As debian:12-slim: updates and security sources; no documentation,
    # manual pages or locales installed from here on; apt keeps neither the
    # packages it downloaded nor its binary caches, and fetches no
    # translations.
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
EOF
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
    find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
        -exec rm -rf {} + 2>/dev/null
    rm -rf "$rootfs"/usr/share/{man,info,groff,lintian,linda}/* \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
    tar --numeric-owner -C "$rootfs" -cf "$base_tar.part" . && mv "$base_tar.part" "$base_tar"
}

t0=$SECONDS
# One run at a time makes or replaces the base; others wait for it.
exec 9>"$cache/base.lock"
flock 9
for stale in "$cache"/base-*.tar; do
    if [ -e "$stale" ] && [ "$stale" != "$base_tar" ]; then
        rm -f "$stale"
    fi
done
if [ ! -s "$base_tar" ]; then
    echo "image: making the base image with debootstrap ($suite from $mirror)"
    if ! make_base; then
        fail base "debootstrap $suite failed"
        show_log "$tmp/debootstrap.log"
        finish
    fi
    # Older bases, and the layers built on them, are of no more use.
    podman images --format '{{.Repository}}:{{.Tag}}' localhost/mtable-base 2>/dev/null |
        while read -r img; do podman rmi -f "$img" >/dev/null 2>&1; done
    podman image prune -f >/dev/null 2>&1
fi
if ! podman image exists "$base"; then
    if ! podman import --change 'CMD ["/bin/bash"]' "$base_tar" "$base" >"$tmp/import.log" 2>&1; then
        fail base "podman import of $base_tar failed"
        show_log "$tmp/import.log"
        finish
    fi
fi
flock -u 9
echo "image: base $base ready ($((SECONDS - t0))s)"

# ---------------------------------------------------------------------------
# Build.

t0=$SECONDS
if podman build --format docker --network host --build-arg "BASE_IMAGE=$base" \
    -f docker/Dockerfile -t "$image" . >"$tmp/build.log" 2>&1 </dev/null; then
    pass build "$((SECONDS - t0))s"
else
    fail build "podman build failed"
    show_log "$tmp/build.log" 40
    finish
fi
bytes=$(podman image inspect --format '{{.Size}}' "$image" 2>/dev/null)
if [[ "$bytes" =~ ^[0-9]+$ ]]; then
    pass size "$((bytes / 1000000)) MB ($bytes bytes)"
else
    fail size "podman image inspect gave '$bytes'"
fi

# ---------------------------------------------------------------------------
# Run.

free_port()
{
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
port=$(free_port)
admin_port=$(free_port)
while [ "$admin_port" = "$port" ]; do admin_port=$(free_port); done
table=http://127.0.0.1:$port
admin=http://127.0.0.1:$admin_port

if ! podman run -d --name "$ctr" --network host \
    -e "MTABLE_LISTEN=127.0.0.1:$port" -e "MTABLE_ADMIN_LISTEN=127.0.0.1:$admin_port" \
    "$image" >"$tmp/run.log" 2>&1; then
    fail start "podman run failed"
    show_log "$tmp/run.log"
    finish
fi

up=0
for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$admin/healthz" 2>/dev/null; then
        up=1
        break
    fi
    if [ "$(podman inspect --format '{{.State.Running}}' "$ctr" 2>/dev/null)" != true ]; then
        break
    fi
    sleep 0.1
done
if [ "$up" -eq 1 ]; then
    pass start
else
    fail start "no answer on $admin/healthz"
    podman logs "$ctr" >"$tmp/ctr.log" 2>&1
    show_log "$tmp/ctr.log"
    finish
fi

code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$admin/healthz")
if [ "$code" = 200 ]; then pass healthz; else fail healthz "status $code"; fi
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$admin/readyz")
if [ "$code" = 200 ]; then pass readyz; else fail readyz "status $code: $(head -c 200 "$tmp/body")"; fi

if node docker/signed-request.mjs "$table/devstoreaccount1" >"$tmp/signed.log" 2>&1; then
    pass signed "$(tail -n 1 "$tmp/signed.log")"
else
    fail signed "the signed requests were not served as expected"
    show_log "$tmp/signed.log"
fi

uid=$(podman exec "$ctr" sh -c 'grep "^Uid:" /proc/1/status' 2>&1 | awk '{ print $2 }')
cmd=$(podman exec "$ctr" cat /proc/1/comm 2>/dev/null)
if [ "$uid" = 10001 ] && [ "$cmd" = mtable-proxy ]; then
    pass non-root "process 1 is $cmd, uid $uid"
else
    fail non-root "process 1 is '$cmd' with uid '$uid'; want mtable-proxy with 10001"
fi

if podman healthcheck run "$ctr" >"$tmp/hc.log" 2>&1; then
    pass healthcheck "$(head -n 1 "$tmp/hc.log")"
else
    fail healthcheck "podman healthcheck run: $(head -n 1 "$tmp/hc.log")"
fi

# podman stop sends the image's STOPSIGNAL (SIGTERM) and would send SIGKILL
# after 10 s; the proxy must have exited cleanly well before.
start_ms=$(date +%s%3N)
podman stop -t 10 "$ctr" >"$tmp/stop.log" 2>&1
stop_ms=$(($(date +%s%3N) - start_ms))
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$ctr" 2>/dev/null)
if [ "$exit_code" = 0 ] && [ "$stop_ms" -lt 5000 ]; then
    pass stop "exit 0 after ${stop_ms} ms"
else
    fail stop "exit code '$exit_code' after ${stop_ms} ms (want 0 within 5000 ms)"
    podman logs "$ctr" >"$tmp/ctr.log" 2>&1
    show_log "$tmp/ctr.log"
fi

finish
