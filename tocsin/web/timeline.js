// The selected alert's timeline: its zone's evidence per time bucket (bars) and its state changes (a band),
// drawn as plain SVG from the alert's own detail (evidence and history), so it needs no request of its own.
const SVG = "http://www.w3.org/2000/svg";
const BUCKETS_MS = [5, 15, 30, 60, 180, 360, 720, 1440].map((m) => m * 60000);
const MAX_BARS = 48;
const MIN_WINDOW_MS = 30 * 60000;
export const STATE_COLOURS = { open: "#cf222e", acknowledged: "#bf8700", resolved: "#1a7f37" };

// Counts of evidence per bucket (5 minutes, wider when the window needs more than MAX_BARS bars) from the first
// evidence (or the opening) to the resolution (or now), and the state each history entry moved the alert to.
export function timelineData(alert, now = Date.now()) {
  const times = (alert.evidence || []).map((e) => Date.parse(e.observed_at)).filter(Number.isFinite);
  const history = (alert.history || []).map((h) => ({ at: Date.parse(h.at), state: h.to_state, severity: h.severity }))
    .filter((h) => Number.isFinite(h.at));
  const opened = Date.parse(alert.opened_at);
  const end = Math.max(alert.resolved_at ? Date.parse(alert.resolved_at) : now, ...times, ...history.map((h) => h.at));
  // At least half an hour, so a young alert still shows the quiet before it.
  const first = Math.min(opened, ...times, ...history.map((h) => h.at), end - MIN_WINDOW_MS);
  const bucketMs = BUCKETS_MS.find((b) => (end - Math.floor(first / b) * b) / b <= MAX_BARS) || BUCKETS_MS.at(-1);
  const start = Math.floor(first / bucketMs) * bucketMs;
  const n = Math.max(1, Math.ceil((end - start) / bucketMs));  // evidence at the very end goes in the last bar
  const counts = new Array(n).fill(0);
  for (const t of times) counts[Math.min(n - 1, Math.floor((t - start) / bucketMs))] += 1;
  return { start, end: start + n * bucketMs, bucketMs, counts, states: history };
}

function node(tag, attrs = {}, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

const hhmm = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

// An <svg> of the data: bars of evidence counts, a band coloured by state below them, and the time axis.
export function timelineSvg(data, { width = 320, height = 120 } = {}) {
  const pad = { left: 24, right: 6, top: 8, bottom: 30 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom - 10;
  const x = (t) => pad.left + ((t - data.start) / (data.end - data.start)) * plotW;
  const max = Math.max(1, ...data.counts);
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "timeline-chart" });
  const total = data.counts.reduce((a, b) => a + b, 0);
  svg.append(node("title", {}, `${total} evidence item${total === 1 ? "" : "s"} per ${data.bucketMs / 60000} min, ` +
    `${hhmm(data.start)}–${hhmm(data.end)}; ${data.states.map((s) => `${s.state} at ${hhmm(s.at)}`).join(", ")}`));
  const base = pad.top + plotH;
  svg.append(node("line", { x1: pad.left, x2: width - pad.right, y1: base, y2: base, stroke: "#8c959f" }));
  svg.append(node("text", { x: pad.left - 4, y: pad.top + 8, "text-anchor": "end", class: "axis" }, String(max)));
  svg.append(node("text", { x: pad.left - 4, y: base, "text-anchor": "end", class: "axis" }, "0"));
  data.counts.forEach((c, i) => {
    if (!c) return;
    const t0 = data.start + i * data.bucketMs;
    const h = (c / max) * plotH;
    const bar = node("rect", { x: x(t0) + 0.5, y: base - h, width: Math.max(1, x(t0 + data.bucketMs) - x(t0) - 1),
                               height: h, class: "bar", "data-count": c, "data-start": new Date(t0).toISOString() });
    bar.append(node("title", {}, `${c} at ${hhmm(t0)}–${hhmm(t0 + data.bucketMs)}`));
    svg.append(bar);
  });
  // The state band: each state from its change to the next (or the end).
  const bandY = base + 2;
  data.states.forEach((s, i) => {
    const to = i + 1 < data.states.length ? data.states[i + 1].at : data.end;
    const band = node("rect", { x: x(s.at), y: bandY, width: Math.max(1, x(to) - x(s.at)), height: 8,
                                fill: STATE_COLOURS[s.state] || "#57606a", class: "state", "data-state": s.state });
    band.append(node("title", {}, `${s.state}${s.severity ? " (" + s.severity + ")" : ""} from ${hhmm(s.at)}`));
    svg.append(band);
    svg.append(node("line", { x1: x(s.at), x2: x(s.at), y1: pad.top, y2: bandY + 8, class: "change",
                              stroke: STATE_COLOURS[s.state] || "#57606a", "stroke-dasharray": "2 2" }));
  });
  svg.append(node("text", { x: pad.left, y: height - 4, class: "axis" }, hhmm(data.start)));
  svg.append(node("text", { x: width - pad.right, y: height - 4, "text-anchor": "end", class: "axis" },
                  hhmm(data.end)));
  return svg;
}
