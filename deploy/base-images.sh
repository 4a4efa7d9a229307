#!/usr/bin/env bash
# The two base images the project uses, python:3.11-slim-bookworm and postgres:16: pulled when a
# registry answers, otherwise built here as local stand-ins under exactly those tags (as root,
# with the engine running: deploy/engine.sh).
#
#   rnnbot-deploy/bookworm:minbase   `debootstrap --variant=minbase bookworm` from the mirror in
#                                    this machine's apt sources, then `docker import`. The rootfs
#                                    tarball is cached in $CACHE_DIR (delete it to rebuild).
#   python:3.11-slim-bookworm        deploy/standins/python: Debian's Python 3.11, venv, pip, and
#                                    this machine's extra CA certificates (a TLS-intercepting proxy)
#   postgres:16                      deploy/standins/postgres: Debian bookworm's PostgreSQL, which
#                                    is 15, not 16 (see its Dockerfile), with an entrypoint for
#                                    POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB
#
# Every image carries the label org.rnnbot.deploy.recipe (sha256 of what it was built from): one
# whose label matches is kept, so a warm run takes seconds. A tag without the label (a real image
# pulled earlier) is never replaced. RNNBOT_DEPLOY_NO_PULL=1 skips the pull attempts.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"
need_root
trap phase_failed EXIT

BASE_TAG=rnnbot-deploy/bookworm:minbase
ROOTFS_TAR="$CACHE_DIR/bookworm-minbase.tar"
PULL_TIMEOUT_S=${RNNBOT_DEPLOY_PULL_TIMEOUT_S:-30}
BUILD_NETWORK=default
# shellcheck disable=SC1091
[ -f "$STATE_DIR/engine.env" ] && source "$STATE_DIR/engine.env"

# The Debian mirror (and security mirror) this machine's apt uses; deb.debian.org if none is found.
apt_uris() {
    local files=()
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ "${#files[@]}" -gt 0 ] || return 0
    # one-line style (deb [opts] URI suite ...) and deb822 style (URIs: ...)
    awk '/^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }
         /^URIs:/   { for (i = 2; i <= NF; i++) print $i }' "${files[@]}"
}
MIRROR=${RNNBOT_DEBIAN_MIRROR:-$(apt_uris | sed 's:/*$::' | grep -m1 -E '/debian$' || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=$(apt_uris | sed 's:/*$::' | grep -m1 -E '/debian-security$' || true)
SECURITY_MIRROR=${SECURITY_MIRROR:-${MIRROR}-security}

rootfs_tarball() {
    if [ -s "$ROOTFS_TAR" ] && [ -s "$ROOTFS_TAR.sha256" ]; then
        log "rootfs: cached $ROOTFS_TAR"
        return 0
    fi
    command -v debootstrap >/dev/null || {
        log "rootfs: installing debootstrap"
        DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -q debootstrap >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -q debootstrap >/dev/null; }
    }
    mkdir -p "$CACHE_DIR"
    local dir="$CACHE_DIR/rootfs.tmp" t0=$SECONDS
    rm -rf "$dir"
    log "rootfs: debootstrap --variant=minbase bookworm from $MIRROR (log: $LOG_DIR/debootstrap.log)"
    mkdir -p "$LOG_DIR"
    debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >"$LOG_DIR/debootstrap.log" 2>&1 \
        || { tail -20 "$LOG_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
    log "rootfs: debootstrap took $((SECONDS - t0)) s"
    # as Debian's official images: updates and security suites, no apt caches or translations kept
    cat >"$dir/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
SOURCES
    cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT
    echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin
    tar --numeric-owner -C "$dir" -cf "$ROOTFS_TAR.tmp" .
    sha256sum "$ROOTFS_TAR.tmp" | cut -d' ' -f1 >"$ROOTFS_TAR.sha256"
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$dir"
    log "rootfs: $(du -h "$ROOTFS_TAR" | cut -f1) in $ROOTFS_TAR"
}

base_image() {
    local recipe
    recipe=$(cat "$ROOTFS_TAR.sha256")
    if [ "$(image_label "$BASE_TAG" || true)" = "$recipe" ]; then
        log "base: $BASE_TAG is up to date"
        return 0
    fi
    docker import --change "LABEL $RECIPE_LABEL=$recipe" --change 'CMD ["bash"]' \
        --message "debootstrap --variant=minbase bookworm $MIRROR" "$ROOTFS_TAR" "$BASE_TAG" >/dev/null
    log "base: imported $BASE_TAG"
}

# standin TAG DIR: TAG from a registry, else built from deploy/standins/DIR on $BASE_TAG.
standin() {
    local tag=$1 name=$2 src="$DEPLOY_DIR/standins/$2" context recipe label
    context=$(mktemp -d)
    cp -a "$src/." "$context/"
    # the host's locally added CA certificates: pip (and anything else) inside a build then trusts
    # the same TLS-intercepting proxy the host does
    mkdir -p "$context/certs"
    find /usr/local/share/ca-certificates -name '*.crt' -type f -exec cp {} "$context/certs/" \; 2>/dev/null || true
    recipe=$( { docker image inspect -f '{{.Id}}' "$BASE_TAG"
                (cd "$context" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); } \
              | sha256sum | cut -d' ' -f1)
    if label=$(image_label "$tag"); then
        case "$label" in
            "$recipe") log "$tag: stand-in is up to date"; rm -rf "$context"; return 0 ;;
            ""|"<no value>") log "$tag: a real image (not a stand-in): kept"; rm -rf "$context"; return 0 ;;
        esac
        log "$tag: stand-in is out of date"
    fi
    if [ "${RNNBOT_DEPLOY_NO_PULL:-0}" != 1 ] && timeout "$PULL_TIMEOUT_S" docker pull -q "$tag" >/dev/null 2>&1; then
        log "$tag: pulled"
        rm -rf "$context"
        return 0
    fi
    log "$tag: no registry answers: building the stand-in from deploy/standins/$name"
    local t0=$SECONDS old
    old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    mkdir -p "$LOG_DIR"
    if ! docker build --network "$BUILD_NETWORK" --build-arg "BASE=$BASE_TAG" \
        --label "$RECIPE_LABEL=$recipe" -t "$tag" "$context" >"$LOG_DIR/standin-$name.log" 2>&1; then
        tail -30 "$LOG_DIR/standin-$name.log" >&2
        rm -rf "$context"
        die "building the $tag stand-in failed (log: $LOG_DIR/standin-$name.log)"
    fi
    rm -rf "$context"
    # the stand-in it replaces, now untagged (fails harmlessly if a container still uses it)
    [ -z "$old" ] || [ "$old" = "$(docker image inspect -f '{{.Id}}' "$tag")" ] || docker rmi "$old" >/dev/null 2>&1 || true
    log "$tag: stand-in built in $((SECONDS - t0)) s"
}

phase "rootfs tarball" rootfs_tarball
phase "base image $BASE_TAG" base_image
phase "python:3.11-slim-bookworm" standin python:3.11-slim-bookworm python
phase "postgres:16" standin postgres:16 postgres
