# Shared by the deploy/ scripts (sourced, not run): logging, phase timing, the state directory.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEPLOY_DIR/.." && pwd)"
# Outside the repository: survives between runs (the debootstrap tarball, the torch wheel).
CACHE_DIR="${RNNBOT_DEPLOY_CACHE:-/var/cache/rnnbot-deploy}"
# Per boot: what engine.sh found or started (engine.env), dockerd's log.
STATE_DIR="${RNNBOT_DEPLOY_STATE:-/run/rnnbot-deploy}"
LOG_DIR="${RNNBOT_DEPLOY_LOGS:-/var/log/rnnbot-deploy}"

# a command that fails under `set -e` says where (functions and subshells too: -E)
set -E
trap 'log "failed (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND"' ERR

log() { printf '[deploy %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# phase NAME COMMAND...: run it and print its wall time. Not inside `||` or `if`: that would turn
# off `set -e` in COMMAND; a failure exits the script instead, and phase_failed (from an EXIT trap)
# reports which phase failed and after how long.
PHASE_NAME=
phase() {
    PHASE_NAME=$1 PHASE_T0=$SECONDS
    shift
    log "== $PHASE_NAME"
    "$@"
    log "== $PHASE_NAME: $((SECONDS - PHASE_T0)) s"
    PHASE_NAME=
}
phase_failed() {
    [ -z "$PHASE_NAME" ] || log "== $PHASE_NAME: FAILED after $((SECONDS - PHASE_T0)) s"
}

# wait_until DEADLINE_S DESCRIPTION COMMAND...: poll COMMAND every second until it succeeds.
wait_until() {
    local limit=$1 what=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "timed out after ${limit} s waiting for $what"
            return 1
        fi
        sleep 1
    done
}

need_root() { [ "$(id -u)" -eq 0 ] || die "$0 must run as root (it installs packages and starts dockerd)"; }

# Every docker image these scripts build carries this label: the sha256 of its recipe.
RECIPE_LABEL=org.rnnbot.deploy.recipe

image_label() {  # image_label TAG: the recipe label of TAG, empty if absent; fails if TAG does not exist
    docker image inspect -f "{{ index .Config.Labels \"$RECIPE_LABEL\" }}" "$1" 2>/dev/null
}
