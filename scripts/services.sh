#!/usr/bin/env bash
# Project-local PostgreSQL+PostGIS, Mosquitto and PgBouncer for Tocsin (DESIGN.md section 5).
#
# Usage: scripts/services.sh start|stop|status|env
#
# Environment:
#   TOCSIN_VAR_DIR     state directory (default: <repo>/var)
#   TOCSIN_PG_PORT     loopback PostgreSQL port (default 55439)
#   TOCSIN_MQTT_PORT   loopback Mosquitto port (default 18839)
#   TOCSIN_PGBOUNCER_PORT
#                      loopback PgBouncer port (default 16439), transaction pooling in front of
#                      the local PostgreSQL; its URL is TOCSIN_PGBOUNCER_URL in services.env.
#                      0: no PgBouncer (a private cluster that needs none)
#   TOCSIN_DATABASE_URL / TOCSIN_MQTT_URL
#                      when set (to something other than the local URL this
#                      script would write), an external server is used and the
#                      local PostgreSQL (and PgBouncer) / Mosquitto is neither installed nor started.
#
# After `start`:  eval "$(scripts/services.sh env)"   (or: source var/services.env)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${TOCSIN_VAR_DIR:-$REPO/var}"
mkdir -p "$VAR"
VAR="$(cd "$VAR" && pwd)"
# Ports: TOCSIN_PG_PORT / TOCSIN_MQTT_PORT when given, else the ones the last start recorded in
# var/services.env (so `make services`, `make test` and `make demo` after a start on other ports keep
# using them), else the defaults.
recorded_port() {
    local file="${TOCSIN_VAR_DIR:-$REPO/var}/services.env"
    # Always succeeds: under `set -e` a failing command substitution in an assignment ends the script.
    if [[ -f "$file" ]]; then sed -n "s/^export $1=\([0-9]*\)$/\1/p" "$file" | tail -1; fi
    return 0
}
PG_PORT="${TOCSIN_PG_PORT:-$(recorded_port TOCSIN_PG_PORT)}"
PG_PORT="${PG_PORT:-55439}"
MQTT_PORT="${TOCSIN_MQTT_PORT:-$(recorded_port TOCSIN_MQTT_PORT)}"
MQTT_PORT="${MQTT_PORT:-18839}"
PGB_PORT="${TOCSIN_PGBOUNCER_PORT:-$(recorded_port TOCSIN_PGBOUNCER_PORT)}"
PGB_PORT="${PGB_PORT:-16439}"

PG_DIR="$VAR/pg"
PG_DATA="$PG_DIR/data"
# PostgreSQL's Unix socket path (<dir>/.s.PGSQL.<port>) must fit in 107 bytes, so a clone in a deep
# directory cannot keep it under var/: it lives in a short directory named after the data directory.
PG_RUN="${TMPDIR:-/tmp}/tocsin-pg-$(printf '%s' "$PG_DIR" | sha1sum | cut -c1-12)"
(( ${#PG_RUN} <= 80 )) || PG_RUN="/tmp/tocsin-pg-$(printf '%s' "$PG_DIR" | sha1sum | cut -c1-12)"
PG_LOG="$PG_DIR/log"
MQTT_DIR="$VAR/mosquitto"
MQTT_CONF="$MQTT_DIR/mosquitto.conf"
MQTT_PID="$MQTT_DIR/mosquitto.pid"
MQTT_LOG="$MQTT_DIR/mosquitto.log"
MQTT_TEMPLATE="$REPO/scripts/mosquitto.conf.in"
PGB_DIR="$VAR/pgbouncer"
PGB_CONF="$PGB_DIR/pgbouncer.ini"
PGB_USERS="$PGB_DIR/userlist.txt"
PGB_PID="$PGB_DIR/pgbouncer.pid"
PGB_LOG="$PGB_DIR/pgbouncer.log"
PGB_TEMPLATE="$REPO/scripts/pgbouncer.ini.in"
ENV_FILE="$VAR/services.env"

LOCAL_DB_URL="postgresql+psycopg://tocsin:tocsin@127.0.0.1:$PG_PORT/tocsin"
LOCAL_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT"
# `pooler=transaction` tells db.session that a transaction pooler is in front (README, "Behind PgBouncer").
LOCAL_PGB_URL="postgresql+psycopg://tocsin:tocsin@127.0.0.1:$PGB_PORT/tocsin?pooler=transaction"

# An env var equal to the local URL (e.g. after `source var/services.env`) still
# means "local"; anything else means an external server.
EXTERNAL_DB=0
if [[ -n "${TOCSIN_DATABASE_URL:-}" && "${TOCSIN_DATABASE_URL}" != "$LOCAL_DB_URL" ]]; then
    EXTERNAL_DB=1
fi
EXTERNAL_MQTT=0
if [[ -n "${TOCSIN_MQTT_URL:-}" && "${TOCSIN_MQTT_URL}" != "$LOCAL_MQTT_URL" ]]; then
    EXTERNAL_MQTT=1
fi

IS_ROOT=0
if [[ "$(id -u)" -eq 0 ]]; then IS_ROOT=1; fi

redact() { printf '%s' "$1" | sed -E 's#(//[^:/@]*):[^@/]*@#\1:***@#'; }
log() { echo "services: $*" >&2; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

for v in PG_PORT MQTT_PORT PGB_PORT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a port number, got '${!v}'"
done

# ----------------------------------------------------------------------------- packages

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

APT_UPDATED=0
apt_install() {
    # apt_install PKG... : install the given packages (caller decides they are missing).
    (($# > 0)) || return 0
    command -v apt-get >/dev/null || die "need to install $*, but apt-get is not available"
    local sudo=()
    if ((IS_ROOT == 0)); then
        command -v sudo >/dev/null || die "need to install $* as root, but sudo is not available"
        sudo=(sudo)
    fi
    if ((APT_UPDATED == 0)); then
        log "apt-get update"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
}

pg_major() {
    # Newest installed PostgreSQL major version with server binaries, or empty.
    local d best=""
    for d in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x "$d" ]] || continue
        d="${d#/usr/lib/postgresql/}"
        d="${d%%/*}"
        if [[ -z "$best" ]] || [[ "$d" =~ ^[0-9]+$ && "$best" =~ ^[0-9]+$ && "$d" -gt "$best" ]]; then
            best="$d"
        fi
    done
    echo "$best"
}

PG_MAJOR=""
PG_BIN=""
ensure_pg_packages() {
    PG_MAJOR="$(pg_major)"
    if [[ -z "$PG_MAJOR" ]]; then
        apt_install postgresql
        PG_MAJOR="$(pg_major)"
        [[ -n "$PG_MAJOR" ]] || die "postgresql installed but no /usr/lib/postgresql/*/bin/postgres found"
    fi
    PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
    if ! pkg_installed "postgresql-$PG_MAJOR-postgis-3" \
        && [[ ! -e "/usr/share/postgresql/$PG_MAJOR/extension/postgis.control" ]]; then
        apt_install "postgresql-$PG_MAJOR-postgis-3"
    fi
}

find_pg_bin() {
    # For stop/status: no installs.
    PG_MAJOR="$(pg_major)"
    if [[ -n "$PG_MAJOR" ]]; then PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"; fi
    [[ -n "$PG_MAJOR" ]]
}

MOSQUITTO=""
find_mosquitto() {
    MOSQUITTO="$(command -v mosquitto 2>/dev/null || true)"
    if [[ -z "$MOSQUITTO" && -x /usr/sbin/mosquitto ]]; then MOSQUITTO=/usr/sbin/mosquitto; fi
    [[ -n "$MOSQUITTO" ]]
}

ensure_mqtt_packages() {
    local missing=()
    find_mosquitto || missing+=(mosquitto)
    command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
    if ((${#missing[@]})); then
        apt_install "${missing[@]}"
        find_mosquitto || die "mosquitto installed but binary not found"
    fi
}

# ----------------------------------------------------------------------------- PostgreSQL

as_pg() {
    # Run a command as the cluster owner: `postgres` when we are root (initdb and
    # postgres refuse to run as root), otherwise the current user.
    if ((IS_ROOT)); then
        # cd / : postgres may not be allowed into the caller's cwd (e.g. /root).
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

make_traversable_for_postgres() {
    # postgres must be able to reach $PG_DIR: add o+x only on parents it cannot traverse.
    ((IS_ROOT)) || return 0
    if runuser -u postgres -- test -x "$PG_DIR"; then
        return 0
    fi
    local path="" part
    local IFS=/
    for part in ${PG_DIR#/}; do
        path="$path/$part"
        if ! runuser -u postgres -- test -x "$path"; then
            log "chmod o+x $path (so postgres can traverse it)"
            chmod o+x "$path"
        fi
    done
    runuser -u postgres -- test -x "$PG_DIR" || die "postgres user still cannot traverse $PG_DIR"
}

pg_running() {
    [[ -f "$PG_DATA/PG_VERSION" && -n "$PG_BIN" ]] || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1 || return 1
    # pg_ctl's check is kill(pid, 0), which a zombie postmaster passes.
    local pid
    pid="$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
    [[ -z "$pid" ]] || pid_alive "$pid"
}

pg_psql() {
    # pg_psql DB SQL : run SQL as the postgres superuser over the unix socket.
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U postgres -d "$1" -tA -c "$2"
}

write_pg_conf() {
    # Rendered on every start so that a changed TOCSIN_PG_PORT takes effect on
    # the next (re)start. Included from postgresql.conf.
    local tmp="$PG_DATA/tocsin.conf.tmp"
    cat >"$tmp" <<EOF
# Written by scripts/services.sh on every start; do not edit.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
logging_collector = off
EOF
    if ((IS_ROOT)); then chown postgres:postgres "$tmp"; fi
    mv -f "$tmp" "$PG_DATA/tocsin.conf"
}

start_pg() {
    if ((EXTERNAL_DB)); then
        log "postgres: external server (TOCSIN_DATABASE_URL set), not starting a local one"
        return 0
    fi
    ensure_pg_packages
    if ((IS_ROOT)); then
        id postgres >/dev/null 2>&1 || die "OS user 'postgres' does not exist (is the postgresql package installed?)"
    fi
    mkdir -p "$PG_DIR" "$PG_RUN"
    if ((IS_ROOT)); then
        chown postgres:postgres "$PG_DIR" "$PG_RUN"
        if [[ -e "$PG_LOG" ]]; then chown postgres:postgres "$PG_LOG"; fi
    fi
    make_traversable_for_postgres

    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        log "postgres: initdb $PG_DATA (PostgreSQL $PG_MAJOR)"
        if [[ -d "$PG_DATA" ]]; then
            # Leftover of an interrupted initdb; initdb needs an empty directory.
            rm -rf "$PG_DATA"
        fi
        if ((IS_ROOT)); then chown -R postgres:postgres "$PG_DIR"; fi
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres \
            --encoding UTF8 --locale C >"$PG_DIR/initdb.log" 2>&1 \
            || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
        echo "include_if_exists = 'tocsin.conf'" >>"$PG_DATA/postgresql.conf"
    fi
    write_pg_conf

    if pg_running; then
        local running_port running_socket
        running_port="$(sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
        running_socket="$(sed -n 5p "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
        if [[ -n "$running_port" && "$running_port" != "$PG_PORT" ]]; then
            # Never move a running cluster: a demo or a test run may be using it.
            die "postgres is already running on port $running_port (var/pg); stop it first with \`make services-stop\`, or start with TOCSIN_PG_PORT=$running_port"
        elif [[ -n "$running_socket" && "$running_socket" != "$PG_RUN" ]]; then
            # Started by an older version of this script with its socket under var/.
            log "postgres: socket in $running_socket, restarting with it in $PG_RUN"
            as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
        else
            log "postgres: already running on 127.0.0.1:$PG_PORT"
        fi
    fi
    if ! pg_running; then
        local stale
        stale="$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
        if [[ -n "$stale" ]] && kill -0 "$stale" 2>/dev/null && ! pid_alive "$stale"; then
            # Zombie of a crashed postmaster: postgres would refuse to start.
            log "postgres: removing stale postmaster.pid (pid $stale is a zombie)"
            rm -f "$PG_DATA/postmaster.pid"
            local lock
            for lock in "$PG_RUN"/.s.PGSQL.*.lock; do
                if [[ -f "$lock" && "$(head -n1 "$lock")" == "$stale" ]]; then
                    rm -f "$lock"
                fi
            done
        fi
        log "postgres: starting on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null; then
            tail -n 20 "$PG_LOG" >&2 || true
            die "postgres failed to start"
        fi
    fi

    # Idempotent role / database / extension setup.
    if [[ "$(pg_psql postgres "SELECT 1 FROM pg_roles WHERE rolname = 'tocsin'")" != 1 ]]; then
        log "postgres: creating role tocsin"
        pg_psql postgres "CREATE ROLE tocsin LOGIN SUPERUSER PASSWORD 'tocsin'"
    fi
    if [[ "$(pg_psql postgres "SELECT 1 FROM pg_database WHERE datname = 'tocsin'")" != 1 ]]; then
        log "postgres: creating database tocsin"
        pg_psql postgres "CREATE DATABASE tocsin OWNER tocsin ENCODING 'UTF8' TEMPLATE template0"
    fi
    pg_psql tocsin "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis"
}

stop_pg() {
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        log "postgres: not initialised, nothing to stop"
        return 0
    fi
    find_pg_bin || { log "postgres: no server binaries found, nothing to stop"; return 0; }
    if pg_running; then
        log "postgres: stopping"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
    else
        log "postgres: not running"
    fi
}

status_pg() {
    if ((EXTERNAL_DB)); then
        echo "postgres: external ($(redact "$TOCSIN_DATABASE_URL"))"
        return 0
    fi
    find_pg_bin || true
    if pg_running; then
        echo "postgres: running (pid $(head -n1 "$PG_DATA/postmaster.pid"), 127.0.0.1:$(sed -n 4p "$PG_DATA/postmaster.pid"), data $PG_DATA)"
    else
        echo "postgres: stopped"
    fi
}

# ----------------------------------------------------------------------------- Mosquitto

pid_alive() {
    # kill -0 also succeeds for a zombie (a killed daemon not yet reaped by its
    # new parent, common in containers), so check the process state too.
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1 || true)"
    [[ "$state" != Z && "$state" != X ]]
}

mqtt_pid() {
    # Prints the PID of our running broker (from the pid file), or fails.
    local pid
    [[ -f "$MQTT_PID" ]] || return 1
    pid="$(tr -dc '0-9' <"$MQTT_PID")"
    [[ -n "$pid" ]] || return 1
    pid_alive "$pid" || return 1
    # Guard against PID reuse after a crash.
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null || echo mosquitto)" == mosquitto ]] || return 1
    echo "$pid"
}

MQTT_CONF_CHANGED=0
sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

render_mqtt_conf() {
    [[ -f "$MQTT_TEMPLATE" ]] || die "missing template $MQTT_TEMPLATE"
    [[ "$MQTT_DIR" != *[[:space:]]* ]] || die "mosquitto cannot handle whitespace in paths: $MQTT_DIR"
    local user
    user="$(id -un)"
    sed -e "s|@MQTT_PORT@|$(sed_escape "$MQTT_PORT")|g" \
        -e "s|@MQTT_DIR@|$(sed_escape "$MQTT_DIR")|g" \
        -e "s|@MQTT_USER@|$(sed_escape "$user")|g" \
        "$MQTT_TEMPLATE" >"$MQTT_CONF.tmp"
    MQTT_CONF_CHANGED=1
    if cmp -s "$MQTT_CONF.tmp" "$MQTT_CONF"; then MQTT_CONF_CHANGED=0; fi
    mv -f "$MQTT_CONF.tmp" "$MQTT_CONF"
}

mqtt_ping() {
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 0 -t tocsin/healthcheck -n >/dev/null 2>&1
}

start_mqtt() {
    if ((EXTERNAL_MQTT)); then
        log "mosquitto: external broker (TOCSIN_MQTT_URL set), not starting a local one"
        return 0
    fi
    ensure_mqtt_packages
    mkdir -p "$MQTT_DIR/data"
    local pid running_port
    if pid="$(mqtt_pid)"; then
        running_port="$(sed -n 's/^listener \([0-9]*\) .*/\1/p' "$MQTT_CONF" 2>/dev/null | head -1)"
        if [[ -n "$running_port" && "$running_port" != "$MQTT_PORT" ]]; then
            # Never move a running broker: a demo or a test run may be using it.
            die "mosquitto is already running on port $running_port (var/mosquitto); stop it first with \`make services-stop\`, or start with TOCSIN_MQTT_PORT=$running_port"
        fi
    fi
    render_mqtt_conf
    if pid="$(mqtt_pid)" && ((MQTT_CONF_CHANGED)); then
        log "mosquitto: configuration changed, restarting"
        stop_mqtt
    fi
    if pid="$(mqtt_pid)"; then
        log "mosquitto: already running (pid $pid)"
    else
        rm -f "$MQTT_PID"
        log "mosquitto: starting on 127.0.0.1:$MQTT_PORT (log: $MQTT_LOG)"
        if ! "$MOSQUITTO" -c "$MQTT_CONF" -d; then
            tail -n 20 "$MQTT_LOG" >&2 2>/dev/null || true
            die "mosquitto failed to start"
        fi
    fi
    wait_until_up mqtt_ping "$MQTT_LOG" "mosquitto not accepting connections on 127.0.0.1:$MQTT_PORT after 10 s"
}

wait_until_up() {
    # wait_until_up PING_FUNCTION LOG MESSAGE : up to 10 s for PING_FUNCTION to succeed, else the log's tail and
    # die with MESSAGE.
    local ping="$1" logfile="$2" message="$3" i
    for ((i = 0; i < 100; i++)); do
        if "$ping"; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$logfile" >&2 2>/dev/null || true
    die "$message"
}

stop_daemon() {
    # stop_daemon NAME PID_FUNCTION PID_FILE SECONDS : SIGTERM the daemon whose pid PID_FUNCTION prints, wait
    # up to SECONDS for it to exit, then SIGKILL; remove its pid file either way.
    local name="$1" pid_fn="$2" pid_file="$3" seconds="$4" pid i
    if ! pid="$("$pid_fn")"; then
        log "$name: not running"
        rm -f "$pid_file"
        return 0
    fi
    log "$name: stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < seconds * 10; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        log "$name: did not exit after $seconds s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$pid_file"
}

stop_mqtt() {
    # SIGTERM makes mosquitto write its persistence DB before exiting.
    stop_daemon mosquitto mqtt_pid "$MQTT_PID" 15
}

status_mqtt() {
    if ((EXTERNAL_MQTT)); then
        echo "mosquitto: external ($(redact "$TOCSIN_MQTT_URL"))"
        return 0
    fi
    local pid
    if pid="$(mqtt_pid)"; then
        echo "mosquitto: running (pid $pid, 127.0.0.1:$MQTT_PORT)"
    else
        echo "mosquitto: stopped"
    fi
}

# ----------------------------------------------------------------------------- PgBouncer

PGBOUNCER=""
find_pgbouncer() {
    PGBOUNCER="$(command -v pgbouncer 2>/dev/null || true)"
    if [[ -z "$PGBOUNCER" && -x /usr/sbin/pgbouncer ]]; then PGBOUNCER=/usr/sbin/pgbouncer; fi
    [[ -n "$PGBOUNCER" ]]
}

pgb_pid() {
    # Prints the PID of our running PgBouncer (from its pid file), or fails.
    local pid
    [[ -f "$PGB_PID" ]] || return 1
    pid="$(tr -dc '0-9' <"$PGB_PID")"
    [[ -n "$pid" ]] || return 1
    pid_alive "$pid" || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null || echo pgbouncer)" == pgbouncer ]] || return 1
    echo "$pid"
}

PGB_CONF_CHANGED=0
render_pgb_conf() {
    [[ -f "$PGB_TEMPLATE" ]] || die "missing template $PGB_TEMPLATE"
    [[ "$PGB_DIR" != *[[:space:]]* ]] || die "pgbouncer cannot handle whitespace in paths: $PGB_DIR"
    sed -e "s|@PGB_PORT@|$(sed_escape "$PGB_PORT")|g" \
        -e "s|@PGB_DIR@|$(sed_escape "$PGB_DIR")|g" \
        -e "s|@PG_PORT@|$(sed_escape "$PG_PORT")|g" \
        "$PGB_TEMPLATE" >"$PGB_CONF.tmp"
    # The local role's password (loopback only, as in TOCSIN_DATABASE_URL).
    printf '"tocsin" "tocsin"\n' >"$PGB_USERS.tmp"
    chmod 600 "$PGB_USERS.tmp"
    PGB_CONF_CHANGED=1
    if cmp -s "$PGB_CONF.tmp" "$PGB_CONF"; then PGB_CONF_CHANGED=0; fi
    if ((IS_ROOT)); then chown postgres:postgres "$PGB_CONF.tmp" "$PGB_USERS.tmp"; fi
    mv -f "$PGB_CONF.tmp" "$PGB_CONF"
    mv -f "$PGB_USERS.tmp" "$PGB_USERS"
}

pgb_psql() {
    # pgb_psql DB SQL : through our PgBouncer as tocsin (DB `pgbouncer` is its console).
    PGPASSWORD=tocsin PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PGB_PORT" -U tocsin -d "$1" -tA -c "$2"
}

pgb_ping() {
    # Ours answers on the port (not another one left there: ours would have failed to bind and exited),
    # and reaches the cluster.
    local config
    config="$(pgb_psql pgbouncer "SHOW CONFIG" 2>/dev/null || true)"
    awk -F'|' -v want="$PGB_PID" '$1 == "pidfile" && $2 == want { found = 1 } END { exit !found }' \
        <<<"$config" || return 1
    pgb_psql tocsin "SELECT 1" >/dev/null 2>&1
}

start_pgb() {
    if ((EXTERNAL_DB)); then
        log "pgbouncer: external database (TOCSIN_DATABASE_URL set), not starting a local pooler"
        return 0
    fi
    if ((PGB_PORT == 0)); then
        log "pgbouncer: off (TOCSIN_PGBOUNCER_PORT=0)"
        return 0
    fi
    find_pgbouncer || apt_install pgbouncer
    find_pgbouncer || die "pgbouncer installed but binary not found"
    mkdir -p "$PGB_DIR"
    # PgBouncer refuses to run as root: as root it runs as postgres (as the cluster does).
    if ((IS_ROOT)); then chown postgres:postgres "$PGB_DIR"; fi
    local pid running_port
    if pid="$(pgb_pid)"; then
        running_port="$(sed -n 's/^listen_port = \([0-9]*\)$/\1/p' "$PGB_CONF" 2>/dev/null | head -1)"
        if [[ -n "$running_port" && "$running_port" != "$PGB_PORT" ]]; then
            # Never move a running pooler: a demo or a test run may be using it.
            die "pgbouncer is already running on port $running_port (var/pgbouncer); stop it first with \`make services-stop\`, or start with TOCSIN_PGBOUNCER_PORT=$running_port"
        fi
    fi
    render_pgb_conf
    if pid="$(pgb_pid)" && ((PGB_CONF_CHANGED)); then
        log "pgbouncer: configuration changed, restarting"
        stop_pgb
    fi
    if pid="$(pgb_pid)"; then
        log "pgbouncer: already running (pid $pid)"
    else
        rm -f "$PGB_PID"
        if ((IS_ROOT)) && [[ -e "$PGB_LOG" ]]; then chown postgres:postgres "$PGB_LOG"; fi
        log "pgbouncer: starting on 127.0.0.1:$PGB_PORT, transaction pooling (log: $PGB_LOG)"
        if ! as_pg "$PGBOUNCER" -d -q "$PGB_CONF"; then
            tail -n 20 "$PGB_LOG" >&2 2>/dev/null || true
            die "pgbouncer failed to start"
        fi
    fi
    wait_until_up pgb_ping "$PGB_LOG" \
        "pgbouncer (ours, $PGB_CONF) not accepting connections on 127.0.0.1:$PGB_PORT after 10 s; is the port taken?"
}

stop_pgb() {
    # SIGTERM: immediate shutdown (SIGINT would wait for every client to go).
    stop_daemon pgbouncer pgb_pid "$PGB_PID" 10
}

status_pgb() {
    if ((EXTERNAL_DB || PGB_PORT == 0)); then
        echo "pgbouncer: not used"
        return 0
    fi
    local pid
    if pid="$(pgb_pid)"; then
        echo "pgbouncer: running (pid $pid, 127.0.0.1:$PGB_PORT, transaction pooling)"
    else
        echo "pgbouncer: stopped"
    fi
}

# ----------------------------------------------------------------------------- env file

write_env() {
    local db_url="$LOCAL_DB_URL" mqtt_url="$LOCAL_MQTT_URL"
    if ((EXTERNAL_DB)); then db_url="$TOCSIN_DATABASE_URL"; fi
    if ((EXTERNAL_MQTT)); then mqtt_url="$TOCSIN_MQTT_URL"; fi
    {
        echo "# Written by scripts/services.sh; source it or: eval \"\$(scripts/services.sh env)\""
        echo "export TOCSIN_DATABASE_URL=$(printf '%q' "$db_url")"
        echo "export TOCSIN_MQTT_URL=$(printf '%q' "$mqtt_url")"
        echo "export TOCSIN_PG_PORT=$PG_PORT"
        echo "export TOCSIN_MQTT_PORT=$MQTT_PORT"
        echo "export TOCSIN_PGBOUNCER_PORT=$PGB_PORT"
        # Through the pooler (LISTEN/NOTIFY still needs TOCSIN_DATABASE_URL, the direct one).
        if ((EXTERNAL_DB == 0 && PGB_PORT != 0)); then
            echo "export TOCSIN_PGBOUNCER_URL=$(printf '%q' "$LOCAL_PGB_URL")"
        fi
    } >"$ENV_FILE.tmp"
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# ----------------------------------------------------------------------------- main

usage() {
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
}

(($# == 1)) || usage
case "$1" in
start)
    start_pg
    start_mqtt
    start_pgb
    write_env
    log "ready; environment in $ENV_FILE"
    ;;
stop)
    # Always stop whatever local instance exists under $VAR, even if an
    # external URL is currently configured.
    stop_pgb
    stop_mqtt
    stop_pg
    ;;
status)
    status_pg
    status_mqtt
    status_pgb
    ;;
env)
    if [[ ! -f "$ENV_FILE" ]]; then
        log "note: $ENV_FILE did not exist (services not started?); writing it"
        write_env
    fi
    cat "$ENV_FILE"
    ;;
*)
    usage
    ;;
esac
