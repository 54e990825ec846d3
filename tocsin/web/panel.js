// The alerts panel: unresolved alerts by severity then age; details with evidence, history and actions.
import { ageText, api, el, severityRank } from "./api.js";
import { feedbackControls, loadMarks } from "./feedback.js";
import { timelineData, timelineSvg } from "./timeline.js";

const SILENCE_CHOICES = [["30 minutes", 30], ["1 hour", 60], ["4 hours", 240], ["12 hours", 720], ["24 hours", 1440]];

const MATCHER_ORDER = ["layer", "zone", "category", "rule"];

export function sortAlerts(alerts) {
  // Highest severity first; within a severity, the longest-standing first.
  return [...alerts].sort((a, b) => severityRank(b.severity) - severityRank(a.severity)
    || Date.parse(a.opened_at) - Date.parse(b.opened_at) || a.id - b.id);
}

// Keep alerts at or above a severity and, when given, of one category.
export function filterAlerts(alerts, { minSeverity = "", category = "" } = {}) {
  return alerts.filter((a) => (!minSeverity || severityRank(a.severity) >= severityRank(minSeverity))
    && (!category || a.category === category));
}

// Whether a silence mutes an alert now: every matcher it gives matches, and now is within its time range.
export function silenceMatches(silence, alert, now = Date.now()) {
  if (Date.parse(silence.starts_at) > now || Date.parse(silence.ends_at) <= now) return false;
  const have = { layer: alert.zone.layer, zone: alert.zone.code, category: alert.category, rule: alert.rule };
  return Object.entries(silence.matchers).every(([k, v]) => have[k] === v
    || (k === "rule" && (alert.rules || []).some((r) => r.rule === v)));
}

export class AlertsPanel {
  constructor({ onSelect, canAct, onSilencesChanged = () => {}, categories = [] }) {
    this.onSelect = onSelect;
    this.categories = categories;  // the classifier's, for "wrong category"
    this.canAct = canAct;
    this.onSilencesChanged = onSilencesChanged;
    this.list = document.getElementById("alert-list");
    this.detail = document.getElementById("alert-detail");
    this.selectedId = null;
    this.signedOut = null;  // a message while nobody is signed in
    this.loading = true;  // until the first snapshot: say so rather than "No unresolved alerts"
    this.filter = { minSeverity: "", category: "" };
    this.silences = [];
    this.silenceMinutes = String(SILENCE_CHOICES[1][1]);  // the picker keeps its choice across actions
    this.alerts = [];
    this.list.addEventListener("keydown", (ev) => this.arrowKeys(ev));
    const sev = document.getElementById("filter-severity");
    const cat = document.getElementById("filter-category");
    sev.addEventListener("change", () => { this.filter.minSeverity = sev.value; this.render(this.alerts); });
    cat.addEventListener("change", () => { this.filter.category = cat.value; this.render(this.alerts); });
  }

  setSignedOut(message) {
    this.signedOut = message;
    this.alerts = [];
    this.clearDetail();
    document.getElementById("alert-filters").hidden = true;
    document.getElementById("silences").hidden = true;
    this.render([]);
  }

  isSilenced(alert) {
    return this.silences.some((s) => silenceMatches(s, alert));
  }

  renderCategories(alerts) {
    const select = document.getElementById("filter-category");
    const cats = [...new Set(alerts.map((a) => a.category).concat(this.filter.category ? [this.filter.category] : []))]
      .sort();
    const want = ["", ...cats].join("|");
    if (select.dataset.options === want) return;
    select.dataset.options = want;
    select.replaceChildren(new Option("All categories", ""), ...cats.map((c) => new Option(c.replace(/_/g, " "), c)));
    select.value = this.filter.category;
  }

  render(alerts) {
    this.alerts = alerts;
    const empty = document.getElementById("alerts-empty");
    if (this.signedOut) {
      document.getElementById("alert-count").textContent = "–";
      empty.textContent = this.signedOut;
      empty.hidden = false;
      empty.classList.add("signed-out");
      this.list.replaceChildren();
      return;
    }
    empty.classList.remove("signed-out");
    this.renderCategories(alerts);
    const sorted = sortAlerts(filterAlerts(alerts, this.filter));
    const hidden = alerts.length - sorted.length;
    document.getElementById("alert-count").textContent = hidden ? `${sorted.length} of ${alerts.length}`
      : String(sorted.length);
    empty.textContent = this.loading ? "Loading alerts…"
      : hidden ? `No alerts match the filters (${hidden} hidden).` : "No unresolved alerts.";
    empty.hidden = sorted.length > 0;
    const focusedId = document.activeElement && document.activeElement.dataset.alertId;
    this.list.replaceChildren(...sorted.map((a) => el("li", {},
      el("button", {
        type: "button", class: `alert-item sev-${a.severity}`, dataset: { alertId: a.id, severity: a.severity },
        "aria-current": a.id === this.selectedId ? "true" : "false",
        "aria-label": `${a.severity} ${a.category.replace(/_/g, " ")} in ${a.zone.name} (${a.zone.code}), ${a.state}, ` +
                      `${a.evidence_count} evidence, ${ageText(a.opened_at)} old`,
        onclick: () => this.select(a.id),
      },
      el("span", { class: `sev badge ${a.severity}` }, a.severity),
      el("span", { class: "zone" }, `${a.zone.name} (${a.zone.code})`),
      el("span", { class: "state" }, a.state, this.isSilenced(a) ? el("span", { class: "tag silenced" }, "silenced") : null),
      el("span", { class: "meta" },
         `${a.category.replace(/_/g, " ")} · ${a.evidence_count} evidence · ${ageText(a.opened_at)} old`,
         a.zone.layer !== this.layer ? el("span", { class: "tag other-layer",
           title: `In zone layer ${a.zone.layer}: outlined on the map; choose that layer to colour it` },
           `layer ${a.zone.layer}`) : null)))));
    if (focusedId) {
      const again = this.list.querySelector(`[data-alert-id="${focusedId}"]`);
      if (again) again.focus();
    }
    if (this.selectedId !== null && !sorted.some((a) => a.id === this.selectedId)) this.clearDetail();
    this.renderOtherLayers(alerts);
  }

  renderOtherLayers(alerts) {
    const hint = document.getElementById("other-layers");
    const counts = new Map();
    for (const a of alerts) if (a.zone.layer !== this.layer) counts.set(a.zone.layer, (counts.get(a.zone.layer) || 0) + 1);
    const n = [...counts.values()].reduce((x, y) => x + y, 0);
    hint.hidden = n === 0;
    hint.textContent = n === 0 ? "" : `${n} alert${n > 1 ? "s are" : " is"} in other zone layers ` +
      `(${[...counts].map(([l, c]) => `${l}: ${c}`).join(", ")}): outlined dashed on the map, not coloured. ` +
      "Choose that layer above to colour them.";
  }

  async loadSilences() {
    this.silences = await api("/v1/silences");
    this.renderSilences();
    this.onSilencesChanged();
  }

  renderSilences() {
    const section = document.getElementById("silences");
    const now = Date.now();
    const active = this.silences.filter((s) => Date.parse(s.ends_at) > now);
    section.hidden = this.signedOut !== null;
    document.getElementById("silences-empty").hidden = active.length > 0;
    document.getElementById("silence-list").replaceChildren(...active.map((s) => el("li", {
      dataset: { silenceId: s.id }, class: "silence" },
      el("span", { class: "what" }, MATCHER_ORDER.filter((k) => s.matchers[k]).map((k) => `${k} ${s.matchers[k]}`)
        .join(", ")),
      el("span", { class: "who muted" },
         `${Date.parse(s.starts_at) > now ? "from " + new Date(s.starts_at).toLocaleString() + " " : ""}` +
         `until ${new Date(s.ends_at).toLocaleString()} · by ${s.created_by.replace(/^operator:/, "")}`),
      el("span", { class: "why" }, s.comment),
      this.canAct() ? el("button", { type: "button", class: "unsilence", "aria-label": `Unsilence ${s.id}`,
        onclick: () => this.unsilence(s.id) }, "Unsilence") : null)));
  }

  async unsilence(silenceId) {
    try {
      await api(`/v1/silences/${silenceId}`, { method: "DELETE" });
      await this.loadSilences();
      await this.refresh();
      this.status("Unsilenced");
    } catch (err) {
      this.status(`${err.status || ""} ${err.message}`.trim());
    }
  }

  arrowKeys(ev) {
    if (ev.key !== "ArrowDown" && ev.key !== "ArrowUp") return;
    const items = [...this.list.querySelectorAll(".alert-item")];
    const i = items.indexOf(document.activeElement);
    const next = items[Math.max(0, Math.min(items.length - 1, i + (ev.key === "ArrowDown" ? 1 : -1)))];
    if (next) {
      next.focus();
      ev.preventDefault();
    }
  }

  clearDetail() {
    this.selectedId = null;
    this.detail.hidden = true;
  }

  async select(alertId) {
    this.selectedId = alertId;
    for (const b of this.list.querySelectorAll(".alert-item")) {
      b.setAttribute("aria-current", Number(b.dataset.alertId) === alertId ? "true" : "false");
    }
    const alert = await api(`/v1/alerts/${alertId}`);
    this.onSelect(alert);
    await this.showDetail(alert);
  }

  async refresh() {
    if (this.selectedId === null) return;
    try {
      await this.showDetail(await api(`/v1/alerts/${this.selectedId}`));
    } catch (err) {
      this.status(err.message);
    }
  }

  async showDetail(alert) {
    const ids = (alert.evidence || []).map((e) => e.observation_id).slice(0, 200);
    const observations = new Map();
    const [fc, marks] = await Promise.all([
      ids.length ? api(`/v1/observations?ids=${ids.join(",")}&limit=${ids.length}`) : { features: [] },
      loadMarks(ids).catch((err) => { this.status(`feedback: ${err.message}`); return new Map(); }),
    ]);
    for (const f of fc.features) observations.set(f.id, f.properties);
    document.getElementById("detail-title").textContent =
      `${alert.severity.toUpperCase()} ${alert.category.replace(/_/g, " ")} · ${alert.zone.name} (${alert.zone.code})`;
    const facts = [
      ["Severity", alert.severity], ["State", alert.state], ["Zone", `${alert.zone.name} (${alert.zone.layer}/${alert.zone.code})`],
      ["Rule", alert.rule], ["Evidence", alert.evidence_count], ["Opened", `${ageText(alert.opened_at)} ago`],
      ["Ack code", alert.ack_code],
    ];
    if (alert.acknowledged_by) facts.push(["Acknowledged by", alert.acknowledged_by]);
    const silencedBy = this.silences.filter((s) => silenceMatches(s, alert));
    if (silencedBy.length) {
      facts.push(["Silenced", silencedBy.map((s) => `until ${new Date(s.ends_at).toLocaleTimeString()} by ` +
                                                   `${s.created_by.replace(/^operator:/, "")}: ${s.comment}`).join("; ")]);
    }
    document.getElementById("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    document.getElementById("detail-actions").replaceChildren(...this.actions(alert));
    await this.showDeliveries(alert);
    const timeline = timelineData(alert);
    document.getElementById("detail-timeline").replaceChildren(timelineSvg(timeline), el("figcaption", {},
      `Evidence in ${alert.zone.name} per ${timeline.bucketMs / 60000} min (bars) and the alert's state (band: ` +
      "red open, amber acknowledged, green resolved)"));
    document.getElementById("detail-evidence").replaceChildren(...(alert.evidence || []).map((e) => {
      const obs = observations.get(e.observation_id);
      return el("li", { dataset: { observationId: e.observation_id } }, evidenceText(e, obs),
        feedbackControls(e.observation_id, { marks: marks.get(e.observation_id), categories: this.categories,
                                             current: obs && obs.category, canAct: this.canAct(),
                                             onDone: (message) => this.refresh().then(() => this.status(message)) }));
    }));
    document.getElementById("detail-history").replaceChildren(...(alert.history || []).map((h) =>
      el("li", {}, `${new Date(h.at).toLocaleTimeString()} · ${h.from_state || "—"} → ${h.to_state}` +
                   `${h.severity ? " (" + h.severity + ")" : ""} by ${h.actor}${h.reason ? ": " + h.reason : ""}`)));
    this.detail.hidden = false;
  }

  // Who was paged (operators and admins: responders' names are not for the wall screen's viewer role).
  async showDeliveries(alert) {
    const section = document.getElementById("detail-notified");
    if (!this.canAct()) {
      section.hidden = true;
      return;
    }
    let deliveries;
    try {
      deliveries = await api(`/v1/alerts/${alert.id}/deliveries`);
    } catch (err) {
      deliveries = [];
      this.status(`deliveries: ${err.message}`);
    }
    document.getElementById("deliveries-empty").hidden = deliveries.length > 0;
    document.getElementById("detail-deliveries").replaceChildren(...deliveries.map((d) => el("li", {
      dataset: { deliveryId: d.id, status: d.status }, class: d.acknowledged ? "acked" : null },
      `${d.responder || "(deleted responder)"} · ${d.channel} · tier ${d.tier} · ${d.status} · ` +
      `${new Date(d.updated_at).toLocaleTimeString()}${d.event_kind ? " (" + d.event_kind.replace(/_/g, " ") + ")" : ""}`,
      d.acknowledged ? el("span", { class: "tag acked" }, "acknowledged") : null)));
    section.hidden = false;
  }

  actions(alert) {
    if (!this.canAct()) return [];
    const note = el("input", { type: "text", id: "action-note", placeholder: "Note (optional; silence comment)",
                               "aria-label": "Note for the alert history" });
    const noteBody = () => (note.value.trim() ? { note: note.value.trim() } : {});
    const out = [note];
    if (alert.state === "open") {
      out.push(el("button", { type: "button", id: "ack-button",
        onclick: () => this.act(`/v1/alerts/${alert.id}/acknowledge`, noteBody(), "Acknowledged") }, "Acknowledge"));
    }
    if (alert.state === "open") {
      out.push(el("button", { type: "button", id: "escalate-button", title: "Page the next responder tier now",
        onclick: () => this.act(`/v1/alerts/${alert.id}/escalate`, noteBody(), "Escalated") }, "Escalate"));
    }
    out.push(el("button", { type: "button", id: "resolve-button",
      onclick: () => this.act(`/v1/alerts/${alert.id}/resolve`, noteBody(), "Resolved") }, "Resolve"));
    const duration = el("select", { id: "silence-duration", "aria-label": "Silence duration",
                                    onchange: () => { this.silenceMinutes = duration.value; } },
      SILENCE_CHOICES.map(([label, minutes]) => el("option", { value: minutes }, label)));
    duration.value = this.silenceMinutes;
    out.push(duration, el("button", { type: "button", id: "silence-button", onclick: () => this.act("/v1/silences", {
      matchers: { layer: alert.zone.layer, zone: alert.zone.code, rule: alert.rule },
      ends_at: new Date(Date.now() + Number(duration.value) * 60000).toISOString(),
      comment: note.value.trim() || `silenced from the live map (alert ${alert.id})`,
    }, "Silenced", () => this.loadSilences()) }, "Silence"));
    // The last outcome of an action on this alert: a re-render (a live event for it, arriving after the
    // action's own refresh) must not wipe it.
    const last = this.lastStatus && this.lastStatus.alertId === alert.id ? this.lastStatus.text : "";
    out.push(el("span", { id: "action-status", role: "status", class: "muted" }, last));
    return out;
  }

  async act(path, body, done, after = async () => {}) {
    try {
      await api(path, { method: "POST", body });
      await after();
      await this.refresh();
      this.status(done);
    } catch (err) {
      this.status(`${err.status || ""} ${err.message}`.trim());
    }
  }

  status(text) {
    this.lastStatus = { alertId: this.selectedId, text };
    const s = document.getElementById("action-status");
    if (s) s.textContent = text;
  }
}

function evidenceText(e, obs) {
  const when = e.observed_at ? `${ageText(e.observed_at)} ago` : "";
  const head = `${(e.source || (obs && obs.source) || "observation").replace(/_/g, " ")} ${when}`.trim();
  if (obs && obs.text) return `${head}: “${obs.text}”`;
  if (obs && obs.report) {
    const r = obs.report;
    const parts = [r.utility, r.external_id && `#${r.external_id}`, r.status, r.customers_affected != null &&
                   `${r.customers_affected} customers`, r.cause, r.description].filter(Boolean);
    return `${head}: ${parts.join(" · ")}`;
  }
  return `${head} (observation ${e.observation_id})`;
}
