#!/usr/bin/env bash
# `make test-deploy`: build and run the real compose stack with Docker on this machine, as root.
#
#   engine        deploy/engine.sh: dockerd (started if none answers, stopped again at the end)
#   base images   deploy/base-images.sh: python:3.11-slim-bookworm and postgres:16, pulled or stand-ins
#   inputs        the torch wheel, cached in $CACHE_DIR; the env file
#   build         `docker compose build bot`: the image rnnbot:test, torch from the local wheel
#   one-offs      `docker compose run --rm bot rnnbot --help` and `... rnnbot db upgrade` against db
#   up            `up -d`, polled until db, sandbox, bot and scheduler are healthy
#   checks        a sandbox user gets a completion from the bot container; the scheduler posts
#                 twice (POST_SCHEDULE=30s) with `sent` rows; `rnnbot db stats` in the bot
#                 container shows them; a marker row in PostgreSQL
#   down          `down`: every container's exit code must be 0; no anonymous volume left behind
#   up again      the marker and the migrations survived in the pgdata volume
#   down -v       exit codes 0 again; then nothing of the project is left (containers, volumes, network)
#
# Kept for a warm run: the images (rnnbot:test, the stand-ins and their base), the builder cache,
# and $CACHE_DIR (rootfs tarball, torch wheel). RNNBOT_DEPLOY_CLEAN_IMAGES=1 removes
# rnnbot:test and the build cache at the end; RNNBOT_DEPLOY_KEEP_ENGINE=1 leaves dockerd running.
# The compose project is rnnbot-test and the image rnnbot:test, so a deployment named rnnbot (and
# its rnnbot:latest) on the same machine is never touched.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "$0")/lib.sh"
need_root
cd "$REPO_ROOT"

PROJECT=rnnbot-test
HEALTH_TIMEOUT_S=${RNNBOT_DEPLOY_HEALTH_TIMEOUT_S:-240}
CHECK_TIMEOUT_S=${RNNBOT_DEPLOY_CHECK_TIMEOUT_S:-180}
CHANNEL=@rnnbot_verses
# the sandbox's built-in token (bot.sandbox.server.DEFAULT_TOKEN): not a secret
SANDBOX_TOKEN=7000000001:sandbox-token-not-a-secret
TORCH_PIN=2.13.0
WHEEL_DIR=deploy/wheels

TMP=$(mktemp -d /tmp/rnnbot-test-deploy.XXXXXX)
COMPOSE_FILES=(-f docker-compose.yml -f deploy/compose.test.yml)
ENGINE_WAS_RUNNING=0
docker info >/dev/null 2>&1 && ENGINE_WAS_RUNNING=1
LINKED_WHEEL=
STACK_CREATED=0
TIMES=()
T_TOTAL=$SECONDS

compose() { docker compose -p "$PROJECT" --env-file "$TMP/test.env" "${COMPOSE_FILES[@]}" "$@"; }

# step NAME FUNCTION: phase (timed) and remembered for the summary
step() {
    phase "$@"
    TIMES+=("$(printf '%-28s %4d s' "$1" $((SECONDS - PHASE_T0)))")
}

summary() {
    log "---- phase times ----"
    local line
    for line in "${TIMES[@]}"; do log "$line"; done
    log "$(printf '%-28s %4d s' total $((SECONDS - T_TOTAL)))"
}

cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    if [ -n "$PHASE_NAME" ]; then
        TIMES+=("$(printf '%-28s %4d s  FAILED' "$PHASE_NAME" $((SECONDS - PHASE_T0)))")
        phase_failed
    fi
    if [ "$rc" -ne 0 ] && [ "$STACK_CREATED" = 1 ]; then
        log "FAILED (exit $rc): the stack's state and its last log lines"
        compose ps -a >&2
        compose logs --no-color --tail 40 >&2
        compose logs --no-color --timestamps >"$LOG_DIR/compose.log" 2>&1
        log "every container's whole log: $LOG_DIR/compose.log"
    fi
    if [ "$STACK_CREATED" = 1 ]; then
        compose down -v --remove-orphans --timeout 30 >/dev/null 2>&1
    fi
    [ -z "$LINKED_WHEEL" ] || rm -f "$LINKED_WHEEL"
    rm -rf "$TMP"
    if [ "${RNNBOT_DEPLOY_CLEAN_IMAGES:-0}" = 1 ]; then
        docker rmi rnnbot:test >/dev/null 2>&1
        docker builder prune -f >/dev/null 2>&1
    fi
    summary
    if [ "$ENGINE_WAS_RUNNING" = 0 ] && [ "${RNNBOT_DEPLOY_KEEP_ENGINE:-0}" != 1 ]; then
        "$DEPLOY_DIR/engine.sh" --stop
    fi
    if [ "$rc" -eq 0 ]; then log "test-deploy: PASSED"; else log "test-deploy: FAILED (exit $rc)"; fi
    exit "$rc"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
engine() {
    "$DEPLOY_DIR/engine.sh"
    # shellcheck disable=SC1091
    source "$STATE_DIR/engine.env"
    if [ "$BUILD_NETWORK" = host ]; then
        # dockerd runs without its bridge: the build's RUN steps need the host's network
        printf 'services:\n  bot:\n    build:\n      network: host\n' >"$TMP/compose.network.yml"
        COMPOSE_FILES+=(-f "$TMP/compose.network.yml")
    fi
    # without buildx compose would warn that it is "configured to build using Bake" and fall back;
    # this selects the daemon's builder outright (compose 2.40 calls the variable deprecated)
    docker buildx version >/dev/null 2>&1 || export COMPOSE_BAKE=false
}

base_images() { "$DEPLOY_DIR/base-images.sh"; }

torch_wheel() {
    local cached
    mkdir -p "$CACHE_DIR/wheels"
    cached=$(find "$CACHE_DIR/wheels" -maxdepth 1 -name "torch-$TORCH_PIN+cpu-*.whl" | head -1)
    if [ -z "$cached" ]; then
        [ -x .venv/bin/pip ] || die "no .venv/bin/pip: run make install"
        .venv/bin/pip download -q "torch==$TORCH_PIN" --no-deps -d "$CACHE_DIR/wheels" \
            || log "inputs: no local torch wheel: the build uses PyTorch's CPU index"
        cached=$(find "$CACHE_DIR/wheels" -maxdepth 1 -name "torch-$TORCH_PIN+cpu-*.whl" | head -1)
    fi
    TORCH_WHEELS=
    if [ -n "$cached" ]; then
        # into the build context only for this run (a hard link: no copy of 190 MB); removed at exit
        LINKED_WHEEL="$WHEEL_DIR/$(basename "$cached")"
        ln -f "$cached" "$LINKED_WHEEL" 2>/dev/null || cp "$cached" "$LINKED_WHEEL"
        TORCH_WHEELS=$WHEEL_DIR
        log "inputs: torch from $cached"
    fi
}

inputs() {
    mkdir -p "$LOG_DIR"
    torch_wheel
    # everything compose interpolates, in the temporary directory (never .env in the repository)
    local password
    password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    (umask 077; cat >"$TMP/test.env" <<ENV
POSTGRES_USER=rnnbot
POSTGRES_DB=rnnbot
POSTGRES_PASSWORD=$password
TELEGRAM_BOT_TOKEN=$SANDBOX_TOKEN
CHANNEL_ID=$CHANNEL
TORCH_WHEELS=$TORCH_WHEELS
ENV
    )
    compose config -q
}

build() {
    local before after
    before=$(docker image inspect -f '{{.Id}}' rnnbot:test 2>/dev/null || true)
    if ! compose --progress plain build bot >"$LOG_DIR/build.log" 2>&1; then
        tail -40 "$LOG_DIR/build.log" >&2
        die "docker compose build failed (log: $LOG_DIR/build.log)"
    fi
    grep -E 'level=warning|WARNING' "$LOG_DIR/build.log" | sed 's/^/  build: /' >&2 || true
    after=$(docker image inspect -f '{{.Id}}' rnnbot:test)
    log "build: rnnbot:test $(docker image inspect -f '{{.Size}}' rnnbot:test | awk '{printf "%.2f GB", $1/1e9}')$([ "$before" = "$after" ] && echo ', unchanged (cached)')"
    # the image it replaced, now untagged
    if [ -n "$before" ] && [ "$before" != "$after" ]; then docker rmi "$before" >/dev/null 2>&1 || true; fi
}

BASELINE_VOLUMES=
one_offs() {
    BASELINE_VOLUMES=$(docker volume ls -q | sort)
    STACK_CREATED=1
    local out
    out=$(compose run --rm --no-deps bot rnnbot --help) || die "rnnbot --help failed in the image"
    grep -q "serve" <<<"$out" || die "rnnbot --help printed no 'serve' command"
    log "one-offs: rnnbot --help: ok"
    out=$(compose run --rm --no-deps bot python -c \
        'from models.native_lstm import native_kernel; print(native_kernel())') || die "the image cannot load models.native_lstm"
    [ "$out" != None ] || die "the image has no native int8 LSTM (setup.py did not build it)"
    log "one-offs: native int8 LSTM in the image: $out kernel"
    # starts db (and sandbox) first: bot depends on them being healthy
    out=$(compose run --rm bot rnnbot db upgrade 2>&1) || { echo "$out" >&2; die "rnnbot db upgrade failed"; }
    grep -q "(head)" <<<"$out" || { echo "$out" >&2; die "rnnbot db upgrade did not reach (head)"; }
    log "one-offs: rnnbot db upgrade against db: $(grep '(head)' <<<"$out" | tail -1)"
}

# state SERVICE: "healthy"/"unhealthy"/"starting" with a healthcheck, else the container status
state() {
    local id
    id=$(compose ps -aq "$1")
    [ -n "$id" ] || { echo missing; return; }
    docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}} {{.RestartCount}}' "$id"
}

# wait_ready: poll until db, sandbox, bot and scheduler are healthy (deadline, no fixed sleeps)
wait_ready() {
    local deadline=$((SECONDS + HEALTH_TIMEOUT_S)) t0=$SECONDS service s ready
    declare -A seen=()
    while :; do
        ready=1
        for service in db sandbox bot scheduler; do
            read -r s restarts < <(state "$service")
            case "$s" in
                exited|dead|unhealthy)
                    docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}{{.ExitCode}}: {{.Output}}{{end}}{{end}}' \
                        "$(compose ps -aq "$service")" 2>/dev/null | tail -5 | sed "s/^/  $service health: /" >&2
                    die "$service is $s" ;;
            esac
            [ "${restarts:-0}" -eq 0 ] || die "$service restarted ($restarts times)"
            if [ "$s" = healthy ]; then
                [ -n "${seen[$service]:-}" ] || { seen[$service]=1; log "up: $service $s after $((SECONDS - t0)) s"; }
            else
                ready=0
            fi
        done
        [ "$ready" = 0 ] || return 0
        [ "$SECONDS" -lt "$deadline" ] || die "not ready within ${HEALTH_TIMEOUT_S} s"
        sleep 1
    done
}

up() {
    STACK_CREATED=1
    compose up -d --no-build >"$LOG_DIR/up.log" 2>&1 || { cat "$LOG_DIR/up.log" >&2; die "docker compose up failed"; }
    wait_ready
}

psql_db() { compose exec -T db psql -X -q -At -v ON_ERROR_STOP=1 -U rnnbot -d rnnbot "$@"; }

# ---- functional checks -------------------------------------------------------------------------
# The sandbox's page and control API answer only requests addressed to the sandbox itself
# (sandbox/guard.py), so a sandbox user acts from inside its container, against 127.0.0.1:8080.

# sandbox_py CODE [ARGS...]: run CODE with the sandbox's client in the sandbox container
sandbox_py() { local code=$1; shift; compose exec -T sandbox python -c "$code" "$@"; }

# sql QUERY: one value from PostgreSQL
sql() { psql_db -c "$1"; }

PROMPT="And God said"
has_completion_row() { [ "$(sql "SELECT count(*) FROM completions")" -ge 1 ]; }

# A sandbox user writes to the bot; the bot container answers with a completion, and records it.
check_completion() {
    local out t0=$SECONDS
    out=$(sandbox_py '
import asyncio, sys
from sandbox import SandboxClient
async def main():
    async with SandboxClient("http://127.0.0.1:8080") as alice:
        reply = await alice.ask(None, sys.argv[1], timeout=float(sys.argv[2]))
        print(reply["text"])
asyncio.run(main())
' "$PROMPT" "$CHECK_TIMEOUT_S" 2>"$TMP/completion.err") || { tail -5 "$TMP/completion.err" >&2; die "check_completion: no answer from the bot within ${CHECK_TIMEOUT_S} s"; }
    [[ "$out" == "$PROMPT"* ]] && [ "${#out}" -gt "${#PROMPT}" ] \
        || die "check_completion: the answer is not a completion of '$PROMPT': $(head -c 200 <<<"$out")"
    log "check_completion: answered in $((SECONDS - t0)) s: $(head -1 <<<"$out" | cut -c1-100)"
    # the exchange is stored after the reply (through the outbox)
    wait_until "$CHECK_TIMEOUT_S" "the completion's row" has_completion_row \
        || die "check_completion: no row in completions within ${CHECK_TIMEOUT_S} s"
    log "check_completion: stored: $(sql "SELECT count(*) FROM prompts") prompt(s), $(sql "SELECT count(*) FROM completions") completion(s)"
}

channel_posts() {
    sandbox_py '
import asyncio, sys
from sandbox import SandboxClient
async def main():
    async with SandboxClient("http://127.0.0.1:8080") as c:
        print(len(await c.channel_posts(sys.argv[1])))
asyncio.run(main())
' "$CHANNEL"
}

# two_posts: at least two messages in the channel and two `sent` rows in posts
two_posts() {
    [ "$(channel_posts)" -ge 2 ] && [ "$(sql "SELECT count(*) FROM posts WHERE status = 'sent'")" -ge 2 ]
}

# The scheduler (POST_SCHEDULE=30s) posts to the sandbox's channel, and records each post as sent.
check_posts() {
    local t0=$SECONDS
    if ! wait_until "$CHECK_TIMEOUT_S" "two scheduled posts" two_posts; then
        log "check_posts: the scheduler's last lines:"
        compose logs --no-color --tail 15 scheduler >&2
        die "check_posts: fewer than 2 posts in $CHANNEL (or their sent rows) within ${CHECK_TIMEOUT_S} s"
    fi
    log "check_posts: $(channel_posts) posts in $CHANNEL after $((SECONDS - t0)) s; rows: $(sql "SELECT string_agg(status || ' message ' || coalesce(message_id::text, '-'), ', ' ORDER BY slot) FROM posts")"
}

# `rnnbot db stats` inside the bot container shows the rows of the two checks above.
check_db_stats() {
    local out n
    out=$(compose exec -T bot rnnbot db stats 2>&1) || { echo "$out" >&2; die "check_db_stats: rnnbot db stats failed"; }
    for table in prompts completions posts; do
        n=$(awk -v t="$table" '$1 == t { gsub(",", "", $2); print $2 }' <<<"$out")
        [ "${n:-0}" -ge 1 ] || { echo "$out" >&2; die "check_db_stats: $table shows ${n:-no} rows"; }
    done
    n=$(grep -cE ' sent +message [0-9]+' <<<"$out" || true)
    [ "$n" -ge 2 ] || { echo "$out" >&2; die "check_db_stats: $n sent posts listed, expected 2 or more"; }
    log "check_db_stats: $(grep -E '^(prompts|completions|posts) ' <<<"$out" | tr -s ' ' | paste -sd ';' -); $n sent posts listed"
}
# -----------------------------------------------------------------------------------------------

MARKER=
checks() {
    check_completion
    check_posts
    check_db_stats
    # something to find again after down/up: a row in PostgreSQL's volume
    MARKER=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
    psql_db -c "CREATE TABLE deploy_test_marker (value text NOT NULL)" \
            -c "INSERT INTO deploy_test_marker VALUES ('$MARKER')"
    log "checks: marker $MARKER written"
}

# stop_all ARGS...: `docker compose down ARGS`, with every container's exit code collected as it
# stops (docker wait, started before down) and required to be 0
stop_all() {
    local ids id name rc failed=0
    ids=$(compose ps -aq)
    [ -n "$ids" ] || die "no containers to stop"
    for id in $ids; do
        name=$(docker inspect -f '{{.Name}}' "$id")
        name=${name#/}
        # as each container stops (before down removes it): its exit code, and its log for a failure
        ( t=$SECONDS; rc=$(docker wait "$id" 2>&1) || true; echo "$rc $((SECONDS - t))" >"$TMP/exit.$name" ) &
        ( docker logs -f -n 30 "$id" >"$TMP/log.$name" 2>&1 || true ) &
    done
    local t0=$SECONDS
    # no --timeout: each service's stop_grace_period applies, as in production
    compose down "$@" >"$LOG_DIR/down.log" 2>&1 \
        || { cat "$LOG_DIR/down.log" >&2; die "docker compose down failed"; }
    wait
    log "down: took $((SECONDS - t0)) s"
    for f in "$TMP"/exit.*; do
        read -r rc took <"$f"
        name=${f##*/exit.}
        log "down: $name exited $rc, ${took} s into the down"
        if [ "$rc" != 0 ]; then
            failed=1
            sed "s/^/  $name: /" "$TMP/log.$name" >&2
        fi
    done
    rm -f "$TMP"/exit.* "$TMP"/log.*
    [ "$failed" = 0 ] || die "a container did not exit 0"
    # no anonymous volume may be left behind (a VOLUME of an image that the service does not mount)
    local left
    left=$(comm -13 <(echo "$BASELINE_VOLUMES") <(docker volume ls -q | sort) | grep -v "^${PROJECT}_" || true)
    [ -z "$left" ] || die "anonymous volumes left behind: $left"
}

down_keep() { stop_all; }

survived() {
    local got
    got=$(psql_db -c "SELECT value FROM deploy_test_marker")
    [ "$got" = "$MARKER" ] || die "the marker did not survive down/up (got '$got')"
    got=$(psql_db -c "SELECT version_num FROM alembic_version")
    [ -n "$got" ] || die "no alembic_version after down/up"
    log "up again: marker $MARKER and migration $got survived"
}

down_volumes() {
    stop_all -v --remove-orphans
    STACK_CREATED=0
    local left
    left=$( { docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"
              docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"
              docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"; } )
    [ -z "$left" ] || die "down -v left containers, volumes or networks of $PROJECT: $left"
    log "down -v: nothing of $PROJECT is left; kept images: $(docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^(rnnbot|python|postgres|rnnbot-deploy/)' | tr '\n' ' ')"
}

step engine engine
step "base images" base_images
step inputs inputs
step "build (rnnbot:test)" build
step "one-offs (help, db upgrade)" one_offs
step "up (to healthy)" up
step checks checks
step "down (exit codes)" down_keep
step "up again (to healthy)" up
step "data survived" survived
step "down -v (exit codes)" down_volumes
