// The alerts panel: unresolved alerts by severity then age; details with evidence, history and actions.
import { ageText, api, el, severityRank } from "./api.js";

const SILENCE_CHOICES = [["30 minutes", 30], ["1 hour", 60], ["4 hours", 240], ["12 hours", 720], ["24 hours", 1440]];

export function sortAlerts(alerts) {
  // Highest severity first; within a severity, the longest-standing first.
  return [...alerts].sort((a, b) => severityRank(b.severity) - severityRank(a.severity)
    || Date.parse(a.opened_at) - Date.parse(b.opened_at) || a.id - b.id);
}

export class AlertsPanel {
  constructor({ onSelect, canAct }) {
    this.onSelect = onSelect;
    this.canAct = canAct;
    this.list = document.getElementById("alert-list");
    this.detail = document.getElementById("alert-detail");
    this.selectedId = null;
    this.list.addEventListener("keydown", (ev) => this.arrowKeys(ev));
  }

  render(alerts) {
    const sorted = sortAlerts(alerts);
    document.getElementById("alert-count").textContent = String(sorted.length);
    document.getElementById("alerts-empty").hidden = sorted.length > 0;
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
      el("span", { class: "state" }, a.state),
      el("span", { class: "meta" },
         `${a.category.replace(/_/g, " ")} · ${a.evidence_count} evidence · ${ageText(a.opened_at)} old`)))));
    if (focusedId) {
      const again = this.list.querySelector(`[data-alert-id="${focusedId}"]`);
      if (again) again.focus();
    }
    if (this.selectedId !== null && !sorted.some((a) => a.id === this.selectedId)) this.clearDetail();
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
    if (ids.length) {
      const fc = await api(`/v1/observations?ids=${ids.join(",")}&limit=${ids.length}`);
      for (const f of fc.features) observations.set(f.id, f.properties);
    }
    document.getElementById("detail-title").textContent =
      `${alert.severity.toUpperCase()} ${alert.category.replace(/_/g, " ")} · ${alert.zone.name} (${alert.zone.code})`;
    const facts = [
      ["Severity", alert.severity], ["State", alert.state], ["Zone", `${alert.zone.name} (${alert.zone.layer}/${alert.zone.code})`],
      ["Rule", alert.rule], ["Evidence", alert.evidence_count], ["Opened", `${ageText(alert.opened_at)} ago`],
      ["Ack code", alert.ack_code],
    ];
    if (alert.acknowledged_by) facts.push(["Acknowledged by", alert.acknowledged_by]);
    document.getElementById("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    document.getElementById("detail-actions").replaceChildren(...this.actions(alert));
    document.getElementById("detail-evidence").replaceChildren(...(alert.evidence || []).map((e) =>
      el("li", { dataset: { observationId: e.observation_id } }, evidenceText(e, observations.get(e.observation_id)))));
    document.getElementById("detail-history").replaceChildren(...(alert.history || []).map((h) =>
      el("li", {}, `${new Date(h.at).toLocaleTimeString()} · ${h.from_state || "—"} → ${h.to_state}` +
                   `${h.severity ? " (" + h.severity + ")" : ""} by ${h.actor}${h.reason ? ": " + h.reason : ""}`)));
    this.detail.hidden = false;
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
    out.push(el("button", { type: "button", id: "resolve-button",
      onclick: () => this.act(`/v1/alerts/${alert.id}/resolve`, noteBody(), "Resolved") }, "Resolve"));
    const duration = el("select", { id: "silence-duration", "aria-label": "Silence duration" },
      SILENCE_CHOICES.map(([label, minutes]) => el("option", { value: minutes }, label)));
    out.push(duration, el("button", { type: "button", id: "silence-button", onclick: () => this.act("/v1/silences", {
      matchers: { layer: alert.zone.layer, zone: alert.zone.code, rule: alert.rule },
      ends_at: new Date(Date.now() + Number(duration.value) * 60000).toISOString(),
      comment: note.value.trim() || `silenced from the live map (alert ${alert.id})`,
    }, "Silenced") }, "Silence"));
    out.push(el("span", { id: "action-status", role: "status", class: "muted" }));
    return out;
  }

  async act(path, body, done) {
    try {
      await api(path, { method: "POST", body });
      await this.refresh();
      this.status(done);
    } catch (err) {
      this.status(`${err.status || ""} ${err.message}`.trim());
    }
  }

  status(text) {
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
