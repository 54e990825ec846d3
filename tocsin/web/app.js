// The live map page: wires the map, the alerts panel, sign-in and the live feed together.
import { api } from "./api.js";
import { LiveFeed } from "./live.js";
import { landLayer, MapView } from "./map.js";
import { AlertsPanel } from "./panel.js";
import { Attention } from "./attention.js";

const STATE_RANK = { open: 0, acknowledged: 1, resolved: 2 };
const SNAPSHOT_HOURS = 24;
const SNAPSHOT_LIMIT = 5000;

const state = { operator: null, role: null, layer: null, alerts: new Map(), loading: false, buffered: [] };
let mapView;
let panel;
let feed;
const attention = new Attention(document.title);
const SIGNED_OUT = "You are signed out, so alerts are not shown here: sign in with an operator token to see them.";

// A read-only view for tests, benchmarks and the curious (window.tocsin in the console).
const debug = {
  ready: false, firstRenderMs: null, zoneCount: 0, observationCount: 0, alertCount: 0, wsState: "offline",
  lastEventId: null, messages: 0, landLayer: null,
  landCount: () => mapView.landCount(),
  zoom: () => mapView.map.getZoom(),
  setZoom: (z) => mapView.map.setZoom(z, { animate: false }),
  visibleLabels: () => [...document.querySelectorAll("#map .zone-label:not(.label-hidden)")].map((n) => {
    const r = n.getBoundingClientRect();
    return { text: n.textContent, left: r.left, top: r.top, right: r.right, bottom: r.bottom };
  }),
  hiddenLabelCount: () => document.querySelectorAll("#map .zone-label.label-hidden").length,
  zoneFill: (code) => mapView.zoneFill(code),
  zoneSeverity: (code) => mapView.severity.get(code) || null,
  hasObservation: (id) => mapView.observations.has(id),
  uncertaintyRadiusM: (id) => { const o = mapView.observations.get(id); return o && o.circle ? o.circle.getRadius() : null; },
  footprintCount: () => mapView.footprints.getLayers().length,
  alertIds: () => unresolved().map((a) => a.id),
  layer: () => state.layer,
  otherLayerOutlines: () => mapView.otherOutlineKeys(),
  cues: () => attention.cues,
  beeps: () => attention.beeps,
  muted: () => attention.muted,
  uncertaintyStyle: (id) => { const o = mapView.observations.get(id); return o && o.circle ? { ...o.circle.options } : null; },
  refreshPanel: () => panel.refresh(),  // as a live event for the selected alert does
  marks: () => performance.getEntriesByType("mark").filter((m) => m.name.startsWith("tocsin:"))
    .map((m) => [m.name, Math.round(m.startTime)]),
};
window.tocsin = debug;

function publishCounts() {
  debug.zoneCount = mapView.zones.size;
  debug.observationCount = mapView.observations.size;
  debug.alertCount = unresolved().length;
  Object.assign(document.getElementById("map").dataset, {
    zoneCount: debug.zoneCount, observationCount: debug.observationCount, alertCount: debug.alertCount,
  });
}

function unresolved() {
  return [...state.alerts.values()].filter((a) => a.state !== "resolved");
}

function upsertAlert(a) {
  const old = state.alerts.get(a.id);
  if (old) {
    const newer = Date.parse(a.updated_at) - Date.parse(old.updated_at);
    if (newer < 0 || (newer === 0 && STATE_RANK[a.state] < STATE_RANK[old.state])) return false;
  }
  state.alerts.set(a.id, { ...old, ...a });
  return true;
}

function fromEvent(e) {
  return { id: e.alert_id, rule: e.rule, category: e.category, severity: e.severity, state: e.state, zone: e.zone,
           evidence_count: e.evidence_count, opened_at: e.opened_at, updated_at: e.updated_at, ack_code: e.ack_code };
}

function renderAlerts() {
  const bySeverity = new Map();
  const rank = (s) => ["minor", "major", "critical"].indexOf(s);
  for (const a of unresolved()) {
    if (a.zone.layer !== state.layer) continue;
    const cur = bySeverity.get(a.zone.code);
    if (!cur || rank(a.severity) > rank(cur)) bySeverity.set(a.zone.code, a.severity);
  }
  mapView.setSeverities(bySeverity);
  const all = unresolved();
  panel.layer = state.layer;
  panel.render(all);
  mapView.setOtherAlerts(all.filter((a) => a.zone.layer !== state.layer),
                         (layer) => api(`/v1/zones?layer=${encodeURIComponent(layer)}&simplify_m=20`))
    .catch((err) => console.warn("other layers' outlines:", err));
  labelLayers(all);
  attention.setTitle(all.filter((a) => a.severity === "critical" && a.state === "open").length);
  publishCounts();
}

// The layer picker says how many unresolved alerts each layer has, so none is out of sight unawares.
function labelLayers(alerts) {
  for (const option of document.getElementById("layer-select").options) {
    const n = alerts.filter((a) => a.zone.layer === option.value).length;
    const zones = Number(option.dataset.zones);
    option.textContent = `${option.value} (${zones} zone${zones === 1 ? "" : "s"})${n ? ` · ${n} alert${n > 1 ? "s" : ""}` : ""}`;
  }
}

async function loadZones(layer, { fit = true } = {}) {
  state.layer = layer;
  document.getElementById("layer-select").value = layer;
  const zones = await api(`/v1/zones?layer=${encodeURIComponent(layer)}&simplify_m=5`);
  performance.mark("tocsin:zones-fetched");
  mapView.setZones(zones, { fit });
  performance.mark("tocsin:zones-drawn");
  renderAlerts();
}

async function focusAlert(alert) {
  if (alert.zone.layer !== state.layer) await loadZones(alert.zone.layer, { fit: false });
  mapView.zoomToZone(alert.zone.code);
}

function apply(message) {
  debug.messages += 1;
  debug.lastEventId = message.id;
  if (message.type === "observation") {
    mapView.addObservations([message.feature]);
  } else if (message.type === "alert_event") {
    const alert = fromEvent(message.event);
    const before = state.alerts.get(alert.id);
    if (!upsertAlert(alert)) return;
    if (panel.selectedId === alert.id) panel.refresh();
    // A cue for a critical alert that is new here (or newly critical), not for its later updates.
    if (alert.severity === "critical" && alert.state === "open" && (!before || before.severity !== "critical")) {
      attention.cue();
    }
  }
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderAlerts();
  });
}

async function loadSnapshot() {
  // Started after the feed's hello, so anything committed meanwhile arrives on the socket too.
  state.loading = true;
  const since = new Date(Date.now() - SNAPSHOT_HOURS * 3600 * 1000).toISOString();
  const [open, acked, observations] = await Promise.all([
    api("/v1/alerts?state=open&limit=1000"), api("/v1/alerts?state=acknowledged&limit=1000"),
    api(`/v1/observations?since=${encodeURIComponent(since)}&limit=${SNAPSHOT_LIMIT}`),
  ]);
  performance.mark("tocsin:snapshot-fetched");
  for (const a of [...open, ...acked]) upsertAlert(a);
  panel.loading = false;
  await panel.loadSilences().catch((err) => console.warn("silences:", err));
  mapView.addObservations(observations.features);
  performance.mark("tocsin:observations-drawn");
  state.loading = false;
  for (const m of state.buffered.splice(0)) apply(m);
  renderAlerts();
}

function startLive() {
  feed = new LiveFeed({
    onStatus: (s) => {
      debug.wsState = s;
      const badge = document.getElementById("conn-status");
      badge.dataset.state = s;
      badge.textContent = `Live: ${s.replace("-", " ")}`;
      if (s === "signed-out") {
        panel.setSignedOut("Your session has ended, so alerts are no longer shown: sign in again to see them.");
        document.getElementById("signin-form").hidden = false;
        attention.setTitle(0);
      }
    },
    onHello: async (hello, fresh) => {
      if (fresh) {
        await loadSnapshot();
        if (state.onSnapshot) state.onSnapshot();
      } else {
        panel.refresh();
      }
    },
    onMessage: (m) => {
      if (state.loading) state.buffered.push(m);
      else {
        apply(m);
        scheduleRender();
      }
    },
  });
  feed.start();
}

function markRendered() {
  requestAnimationFrame(() => {
    if (debug.firstRenderMs === null) debug.firstRenderMs = performance.now();
    debug.ready = true;
    document.getElementById("map").dataset.ready = "true";
  });
}

async function loadLand(layers, config) {
  const layer = landLayer(layers);
  if (config.basemap_url || !layer) return;
  try {
    mapView.setLand(await api(`/v1/zones?layer=${encodeURIComponent(layer)}&simplify_m=20`));
    debug.landLayer = layer;
  } catch (err) {
    console.warn("land:", err);  // the zones still draw, on the water colour
  }
}

function chooseLayer(layers) {
  const wanted = new URLSearchParams(location.search).get("layer");
  const names = layers.map((l) => l.name);
  if (wanted && names.includes(wanted)) return wanted;
  return names.includes("nta") ? "nta" : names[0];
}

async function signIn(ev) {
  ev.preventDefault();
  const input = document.getElementById("token-input");
  try {
    await api("/v1/session", { method: "POST", body: { token: input.value.trim() } });
    location.reload();
  } catch (err) {
    document.getElementById("signin-error").textContent = err.message;
  }
}

async function signOut() {
  if (feed) feed.stop();
  await api("/v1/session", { method: "DELETE" });
  location.reload();
}

async function main() {
  performance.mark("tocsin:start");
  // Independent requests in parallel; the zones and the live feed's snapshot then load side by side.
  const [config, layers, me] = await Promise.all([
    api("/v1/map/config"), api("/v1/zones/layers"),
    api("/v1/session").catch((err) => { if (err.status === 401) return null; throw err; }),
  ]);
  mapView = new MapView("map", config);
  panel = new AlertsPanel({ onSelect: focusAlert, canAct: () => state.role === "operator" || state.role === "admin",
                            onSilencesChanged: () => renderAlerts(), categories: config.categories || [] });
  attention.bind(document.getElementById("mute-toggle"));
  document.getElementById("signin-form").addEventListener("submit", signIn);
  document.getElementById("signout").addEventListener("click", signOut);
  const select = document.getElementById("layer-select");
  select.addEventListener("change", () => loadZones(select.value));
  select.replaceChildren(...layers.map((l) => {
    const option = new Option(`${l.name} (${l.zones} zone${l.zones === 1 ? "" : "s"})`, l.name);
    option.dataset.zones = l.zones;
    return option;
  }));
  const zonesLoaded = Promise.all([layers.length ? loadZones(chooseLayer(layers)) : null, loadLand(layers, config)]);
  state.operator = me && me.name;
  state.role = me && me.role;
  document.body.dataset.role = state.role || "anonymous";
  if (!state.role) {
    document.getElementById("signin-form").hidden = false;
    panel.setSignedOut(SIGNED_OUT);
    await zonesLoaded;
    markRendered();
    return;
  }
  const who = document.getElementById("whoami");
  who.textContent = `${state.operator} (${state.role})`;
  who.hidden = false;
  document.getElementById("signout").hidden = false;
  const snapshotLoaded = new Promise((resolve) => { state.onSnapshot = resolve; });
  startLive();
  await Promise.all([zonesLoaded, snapshotLoaded]);
  renderAlerts();
  const linked = Number(new URLSearchParams(location.search).get("alert"));
  if (linked) panel.select(linked);  // arrived from an SMS or MQTT link (/a/<id>)
  markRendered();
  setInterval(() => {  // ages in the list, and silences that started or ended
    panel.loadSilences().catch(() => {});
    panel.render(unresolved());
  }, 30000);
}

main().catch((err) => {
  console.error(err);
  document.getElementById("conn-status").textContent = `Error: ${err.message}`;
});
