// Operators' feedback on a piece of evidence: "not an incident", "wrong category" (and the right one), "wrong place".
import { api, el } from "./api.js";

export const KIND_TEXT = {
  not_incident: "not an incident", wrong_category: "wrong category", wrong_place: "wrong place",
};

// What a mark says, e.g. "wrong category → flood · olive".
export function markText(f) {
  const what = f.kind === "wrong_category"
    ? `${KIND_TEXT[f.kind]} → ${f.category.replace(/_/g, " ")}` : KIND_TEXT[f.kind];
  return `${what} · ${f.actor.replace(/^operator:/, "")}`;
}

// The marks already made on these observations, by observation id.
export async function loadMarks(ids) {
  const byObs = new Map();
  if (!ids.length) return byObs;
  for (const f of await api(`/v1/feedback?observation_ids=${ids.join(",")}&limit=1000`)) {
    if (!byObs.has(f.observation_id)) byObs.set(f.observation_id, []);
    byObs.get(f.observation_id).push(f);
  }
  return byObs;
}

// Tags for the existing marks, and (for operators) the three actions; `onDone(message)` after each.
export function feedbackControls(obsId, { marks = [], categories = [], current = null, canAct = false, onDone }) {
  const tags = marks.map((f) => el("span", { class: "tag feedback", dataset: { kind: f.kind } }, markText(f)));
  if (!canAct) return tags;
  const send = async (body) => {
    try {
      const f = await api(`/v1/observations/${obsId}/feedback`, { method: "POST", body });
      onDone(`Marked ${markText(f)}`);
    } catch (err) {
      onDone(`${err.status || ""} ${err.message}`.trim());
    }
  };
  const category = el("select", { class: "feedback-category", "aria-label": `Right category for observation ${obsId}`,
    onchange: () => { if (category.value) send({ kind: "wrong_category", category: category.value }); } },
    el("option", { value: "" }, "Wrong category…"),
    categories.filter((c) => c !== current).map((c) => el("option", { value: c }, c.replace(/_/g, " "))));
  return [...tags, el("span", { class: "feedback-actions" },
    el("button", { type: "button", class: "feedback-not-incident", title: "This post is not about an incident",
                   onclick: () => send({ kind: "not_incident" }) }, "Not an incident"),
    category,
    el("button", { type: "button", class: "feedback-wrong-place", title: "The incident is not where it was placed",
                   onclick: () => send({ kind: "wrong_place" }) }, "Wrong place"))];
}
