// The Leaflet map: zone layer coloured by highest unresolved severity, observations fading with age,
// uncertainty circles to scale (metres), report footprints, clustering for thousands of points.
/* global L */
import { ageText, el, SEVERITIES } from "./api.js";

export const SEVERITY_STYLE = {
  critical: { color: "#67000d", fillColor: "#b2182b", fillOpacity: 0.55, weight: 3, dashArray: null },
  major: { color: "#7f2704", fillColor: "#ef6548", fillOpacity: 0.45, weight: 2.5, dashArray: "8 4" },
  minor: { color: "#7f3b08", fillColor: "#fdae61", fillOpacity: 0.4, weight: 2, dashArray: "2 4" },
  none: { color: "#3d5a80", fillColor: "#6b8fb3", fillOpacity: 0.06, weight: 1, dashArray: null },
};
const SOURCE_COLOUR = { utility_report: "#6a3d9a", post: "#1f78b4" };
const FADE_AFTER_S = 6 * 3600;  // observations fade to 15% over six hours
const UNCERTAINTY_MIN_ZOOM = 14;  // below this the rings of thousands of points are clutter
const LABEL_ALL_MIN_ZOOM = 14;
const RING_FILL_MAX_M = 250;
export const LAND_COLOUR = "#f2efe9";  // the water colour is #map.water's background in app.css  // wider rings are outline only: a 1.7 km disc would tint the whole zoomed-in view

// An uncertainty ring: a clear outline, a light fill only while it is small; never catches clicks.
export function uncertaintyStyle(radiusM, colour, opacity) {
  return { color: colour, weight: 1.5, opacity: 0.8 * opacity, dashArray: "4 3", fill: radiusM <= RING_FILL_MAX_M,
           fillColor: colour, fillOpacity: 0.06 * opacity, interactive: false };
}

// The layer land is drawn from: `borough` when loaded, else the one with the fewest zones (the top level).
export function landLayer(layers) {
  if (!layers.length) return null;
  const borough = layers.find((l) => l.name === "borough");
  return borough ? borough.name : [...layers].sort((a, b) => a.zones - b.zones || (a.name < b.name ? -1 : 1))[0].name;
}

export function fade(ageS) {
  return Math.max(0.15, 1 - ageS / FADE_AFTER_S);
}

export class MapView {
  constructor(element, config) {
    this.map = L.map(element, { zoomControl: true, minZoom: 8, maxZoom: 19 });
    this.map.setView([40.71, -73.95], 11);
    this.tiles = Boolean(config.basemap_url);
    if (this.tiles) {
      L.tileLayer(config.basemap_url, { attribution: config.basemap_attribution || "", maxZoom: 19 }).addTo(this.map);
    } else {
      // Offline by default: land is drawn from a loaded zone layer (setLand) over a water-coloured background.
      this.map.getContainer().classList.add("water");
      this.map.createPane("land").style.zIndex = 250;  // under the zones (overlayPane, 400)
      this.map.getPane("land").style.pointerEvents = "none";
    }
    this.land = null;
    this.canvas = L.canvas({ padding: 0.3 });
    this.zoneLayer = null;
    this.zones = new Map();  // code -> {feature, layer}
    this.severity = new Map();  // code -> highest unresolved severity
    this.observations = new Map();  // id -> {feature, marker, circle}
    // Neutral cluster badges: markercluster's default green/yellow/orange would read as severities.
    this.cluster = L.markerClusterGroup({
      chunkedLoading: true, disableClusteringAtZoom: 16, showCoverageOnHover: false, maxClusterRadius: 50,
      iconCreateFunction: (c) => {
        const n = c.getChildCount();
        const size = n < 10 ? 26 : n < 100 ? 32 : 40;
        return L.divIcon({ html: String(n), className: "obs-cluster", iconSize: [size, size] });
      },
    });
    this.footprints = L.featureGroup();
    this.otherAlerts = L.featureGroup();  // alerts of other zone layers: dashed outlines, no fill
    this.otherAlerts.addTo(this.map);
    this.otherLayerZones = new Map();  // layer -> Promise of Map(code -> feature)
    this.otherWanted = [];
    this.uncertainty = L.featureGroup();
    this.footprints.addTo(this.map);
    this.cluster.addTo(this.map);
    this.map.on("zoomend", () => this.updateZoomDependent());
    this.map.on("moveend", () => this.declutterLabels());
    this.addLegend();
    setInterval(() => this.refreshFade(), 30000);
  }

  addLegend() {
    // Top right: bottom left would cover Staten Island (and the south-west of most cities' layers).
    const legend = L.control({ position: "topright" });
    legend.onAdd = () => {
      // A compact, collapsible key (a <details>): on a small screen it folds to one line.
      const box = el("details", { class: "legend", id: "legend", open: true },
        el("summary", {}, el("h2", { id: "legend-title" }, "Zone: highest unresolved alert")),
        ...[...SEVERITIES].reverse().concat(["none"]).map((s) => el("div", {},
          el("span", { class: "swatch", style: `background:${SEVERITY_STYLE[s].fillColor};border-color:${SEVERITY_STYLE[s].color};border-style:${SEVERITY_STYLE[s].dashArray ? "dashed" : "solid"}` }),
          s === "none" ? "No alert" : s[0].toUpperCase() + s.slice(1))),
        el("div", {}, el("span", { class: "swatch", style: `border-color:${SOURCE_COLOUR.post};border-radius:50%` }), "Post"),
        el("div", {}, el("span", { class: "swatch", style: `border-color:${SOURCE_COLOUR.utility_report};border-radius:50%` }), "Utility report"),
        this.tiles ? null : el("div", {}, el("span", { class: "swatch land" }), "Land ",
                               el("span", { class: "swatch water" }), "Water"),
        el("div", { class: "muted" }, "Faded = older; rings = location uncertainty"),
        el("div", { class: "muted" }, "Dashed outline = alert in another zone layer"));
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    legend.addTo(this.map);
  }

  // Land: one layer's zones (the top one, e.g. boroughs) filled in a land colour, non-interactive, under
  // everything else; where no zone is, the water-coloured background shows. Not drawn over tiles.
  setLand(collection) {
    if (this.tiles) return;
    if (this.land) this.land.remove();
    this.land = L.geoJSON(collection, { pane: "land", interactive: false,
      style: { stroke: true, color: "#b9b2a3", weight: 0.8, fillColor: LAND_COLOUR, fillOpacity: 1 } });
    this.land.addTo(this.map);
  }

  landCount() {
    return this.land ? this.land.getLayers().length : 0;
  }

  setZones(collection, { fit = true } = {}) {
    if (this.zoneLayer) this.zoneLayer.remove();
    this.zones.clear();
    this.severity = new Map();  // the caller sets this layer's severities next
    this.zoneLayer = L.geoJSON(collection, {
      style: (f) => this.zoneStyle(f.properties.code),
      onEachFeature: (f, layer) => {
        this.zones.set(f.properties.code, { feature: f, layer, labelKey: null });
      },
    });
    this.zoneLayer.addTo(this.map);
    this.zoneLayer.bringToBack();
    if (fit && collection.features.length) this.map.fitBounds(this.zoneLayer.getBounds(), { padding: [10, 10] });
    this.updateLabels();
  }

  zoneStyle(code) {
    return { ...SEVERITY_STYLE[this.severity.get(code) || "none"] };
  }

  setSeverities(byCode) {
    const before = this.severity;
    this.severity = byCode;
    for (const [code, { layer }] of this.zones) {
      if (before.get(code) !== byCode.get(code) || !layer.options.fillColor) layer.setStyle(this.zoneStyle(code));
    }
    this.updateLabels();
  }

  updateLabels() {
    const all = this.map.getZoom() >= LABEL_ALL_MIN_ZOOM;
    for (const [code, zone] of this.zones) {
      const sev = this.severity.get(code);
      const key = `${sev || ""}|${Boolean(sev) || all}`;
      if (zone.labelKey === key) continue;  // rebinding 262 tooltips on every event is what costs
      zone.labelKey = key;
      const text = sev ? `${code} · ${sev.toUpperCase()}` : `${zone.feature.properties.name} (${code})`;
      zone.layer.unbindTooltip();
      zone.layer.bindTooltip(text, { permanent: Boolean(sev) || all, direction: "center",
                                     className: sev ? "zone-label alerting" : "zone-label" });
    }
    this.declutterLabels();
  }

  // Permanent labels never overlap: the most severe (then the largest zone) keeps its place, and a label that
  // would cover one already placed is hidden until zooming in makes room. The zone's colour still shows.
  declutterLabels() {
    const rank = (code) => SEVERITIES.indexOf(this.severity.get(code) || "");
    const placed = [];
    const labels = [];
    for (const [code, zone] of this.zones) {
      const tip = zone.layer.getTooltip();
      const node = tip && tip.getElement && tip.getElement();
      if (node && tip.options.permanent) labels.push({ code, node, area: zoneArea(zone.layer) });
    }
    labels.sort((a, b) => rank(b.code) - rank(a.code) || b.area - a.area || (a.code < b.code ? -1 : 1));
    for (const label of labels) {
      label.node.classList.remove("label-hidden");
      const r = label.node.getBoundingClientRect();
      const clash = placed.some((p) => r.left < p.right && p.left < r.right && r.top < p.bottom && p.top < r.bottom);
      if (clash) label.node.classList.add("label-hidden");
      else placed.push(r);
    }
  }

  updateZoomDependent() {
    const show = this.map.getZoom() >= UNCERTAINTY_MIN_ZOOM;
    if (show && !this.map.hasLayer(this.uncertainty)) this.uncertainty.addTo(this.map);
    if (!show && this.map.hasLayer(this.uncertainty)) this.uncertainty.remove();
    this.updateLabels();
  }

  addObservations(features) {
    const markers = [];
    for (const feature of features) {
      if (this.observations.has(feature.id)) continue;
      const entry = this.buildObservation(feature);
      this.observations.set(feature.id, entry);
      if (entry.marker) markers.push(entry.marker);
    }
    if (markers.length) this.cluster.addLayers(markers);
  }

  buildObservation(feature) {
    const p = feature.properties;
    const colour = SOURCE_COLOUR[p.source] || "#33a02c";
    const opacity = fade(this.ageS(p));
    const popup = () => observationPopup(feature);
    const entry = { feature };
    if (feature.geometry.type === "Point") {
      const [lon, lat] = feature.geometry.coordinates;
      entry.marker = L.circleMarker([lat, lon], { renderer: this.canvas, radius: 6, color: "#fff", weight: 1.5,
                                                  fillColor: colour, fillOpacity: opacity, opacity });
      entry.marker.bindPopup(popup);
      if (p.uncertainty_m) {
        // L.circle takes its radius in metres, so the ring is drawn to scale at every zoom.
        entry.circle = L.circle([lat, lon], { renderer: this.canvas, radius: p.uncertainty_m,
                                              ...uncertaintyStyle(p.uncertainty_m, colour, opacity) });
        entry.circle.addTo(this.uncertainty);
      }
    } else {
      entry.polygon = L.geoJSON(feature, { style: { color: colour, weight: 2, fillColor: colour,
                                                    opacity, fillOpacity: 0.25 * opacity } });
      entry.polygon.bindPopup(popup);
      entry.polygon.addTo(this.footprints);
    }
    return entry;
  }

  ageS(p) {
    return Math.max(0, (Date.now() - Date.parse(p.observed_at)) / 1000);
  }

  refreshFade() {
    for (const { feature, marker, circle, polygon } of this.observations.values()) {
      const o = fade(this.ageS(feature.properties));
      if (marker) marker.setStyle({ opacity: o, fillOpacity: o });
      if (circle) circle.setStyle({ opacity: 0.8 * o, fillOpacity: 0.06 * o });
      if (polygon) polygon.setStyle({ opacity: o, fillOpacity: 0.25 * o });
    }
  }

  // Alerts whose zone is in another layer than the one shown: outline their zones (fetched once per layer)
  // in the severity's colour, dashed and unfilled, with a tooltip saying which layer colours them.
  async setOtherAlerts(alerts, loadLayer) {
    this.otherWanted = alerts;
    const layers = [...new Set(alerts.map((a) => a.zone.layer))];
    for (const layer of layers) {
      if (!this.otherLayerZones.has(layer)) {
        this.otherLayerZones.set(layer, loadLayer(layer).then((fc) => new Map(fc.features.map((f) => [f.properties.code, f])))
          .catch(() => { this.otherLayerZones.delete(layer); return new Map(); }));
      }
    }
    const zonesBy = new Map(await Promise.all(layers.map(async (l) => [l, await this.otherLayerZones.get(l)])));
    if (this.otherWanted !== alerts) return;  // a newer call superseded this one
    this.otherAlerts.clearLayers();
    const rank = (s) => SEVERITIES.indexOf(s);
    const worst = new Map();  // layer/code -> alerts there
    for (const a of alerts) {
      const key = `${a.zone.layer}/${a.zone.code}`;
      worst.set(key, [...(worst.get(key) || []), a]);
    }
    for (const [key, here] of worst) {
      const { layer, code } = here[0].zone;
      const feature = zonesBy.get(layer) && zonesBy.get(layer).get(code);
      if (!feature) continue;
      const sev = here.map((a) => a.severity).sort((x, y) => rank(y) - rank(x))[0];
      const outline = L.geoJSON(feature, { style: { color: SEVERITY_STYLE[sev].fillColor, weight: 3, opacity: 0.9,
                                                     dashArray: "10 6", fill: false } });
      outline.bindTooltip(`${here.length} ${sev} alert${here.length > 1 ? "s" : ""} in ${layer}/${code} ` +
                          `(${feature.properties.name}); choose layer "${layer}" to colour it`, { sticky: true });
      outline.tocsinKey = key;
      outline.addTo(this.otherAlerts);
    }
  }

  otherOutlineKeys() {
    return this.otherAlerts.getLayers().map((l) => l.tocsinKey).sort();
  }

  zoomToZone(code) {
    const zone = this.zones.get(code);
    if (zone) this.map.fitBounds(zone.layer.getBounds(), { padding: [30, 30], maxZoom: 15 });
  }

  zoneFill(code) {
    const zone = this.zones.get(code);
    if (!zone) return null;
    const path = zone.layer._path;  // the SVG element actually drawn
    return path ? path.getAttribute("fill") : zone.layer.options.fillColor;
  }
}

function zoneArea(layer) {
  const b = layer.getBounds();
  return (b.getEast() - b.getWest()) * (b.getNorth() - b.getSouth());
}

export function observationPopup(feature) {
  const p = feature.properties;
  const rows = [
    ["Category", p.category.replace(/_/g, " ")],
    ["Source", p.source === "utility_report" ? `utility report${p.report && p.report.utility ? " (" + p.report.utility + ")" : ""}` : p.source],
    ["Observed", `${ageText(p.observed_at)} ago`],
    ["Location", `±${Math.round(p.uncertainty_m || 0)} m (${p.geotag_method})`],
  ];
  if (p.text) rows.push(["Text", p.text]);
  if (p.report) {
    for (const key of ["status", "customers_affected", "cause", "description", "estimated_restore_at"]) {
      if (p.report[key] !== undefined) rows.push([key.replace(/_/g, " "), p.report[key]]);
    }
  }
  return el("dl", { class: "popup" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}
