// The page only calls GET /model and POST /recommend: what it shows is what a client gets.
"use strict";

const $ = (selector) => document.querySelector(selector);
const SCORES = ["score", "p_click", "p_conversion", "similarity"];
const SORTED_BY = {ctcvr: "score", ctr: "p_click", cvr: "p_conversion", similarity: "similarity"};
const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toPrecision(4));
let lastQuery = null;  // re-sent when the objective or exclude_seen changes

class ApiError extends Error {
  constructor(kind, message) { super(message); this.kind = kind; }
}

async function api(path, body) {
  const init = body === undefined ? {} :
    {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  let response, data = null;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError("unreachable", `the service did not answer (${e.message})`);
  }
  try { data = await response.json(); } catch (e) { /* not JSON: reported below */ }
  if (!response.ok) {
    throw new ApiError(data && data.error || `HTTP ${response.status}`,
                       data && data.message || `${path} answered ${response.status} ${response.statusText}`);
  }
  return data;
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(error) {
  const box = $("#error");
  box.replaceChildren(el("b", {}, error.kind || "error"), document.createTextNode(` ${error.message}`));
  box.hidden = false;
}

// The new-user form, one input per user feature the model reports, pre-filled with a plausible value.
function buildFeatureForm(features) {
  const form = $("#features");
  form.replaceChildren();
  for (const f of features) {
    const id = `feature-${f.name}`;
    const label = el("label", {for: id}, f.name);
    label.append(el("span", {class: "kind"}, f.kind));
    const input = el("input", {id, "data-feature": f.name, "data-kind": f.kind});
    if (f.kind === "numeric") {
      Object.assign(input, {type: "number", step: "any"});
      if (f.median !== null) input.value = String(Number(f.median.toPrecision(6)));
      if (f.min !== null) input.title = `known range ${fmt(f.min)} to ${fmt(f.max)}`;
    } else {
      const list = el("datalist", {id: `${id}-values`});
      for (const v of f.values || []) list.append(el("option", {value: v}));
      input.setAttribute("list", list.id);
      input.value = (f.values && f.values[0]) || "";
      form.append(list);
    }
    form.append(label, input);
  }
}

// The filter form, from the model's item attributes: categorical ones take values (`in`),
// numeric ones a range (`gte` / `lte`); ids are left to exclude/include lists of the API.
function buildFilterForm(features) {
  const form = $("#filters");
  form.replaceChildren();
  for (const f of features) {
    if (f.kind === "id") continue;
    const id = `filter-${f.name}`;
    const label = el("label", {for: id}, f.name);
    label.append(el("span", {class: "kind"}, f.kind));
    if (f.kind === "numeric") {
      const range = el("div", {class: "range", id});
      for (const [bound, hint] of [["gte", f.min], ["lte", f.max]]) {
        const input = el("input", {type: "number", step: "any", "data-filter": f.name, "data-bound": bound,
                                   "aria-label": `${f.name} ${bound === "gte" ? "at least" : "at most"}`});
        if (hint !== null) input.placeholder = `${bound === "gte" ? "≥" : "≤"} ${fmt(hint)}`;
        range.append(input);
      }
      form.append(label, range);
    } else {
      const input = el("input", {id, "data-filter": f.name, placeholder: (f.values || []).slice(0, 3).join(", ")});
      const list = el("datalist", {id: `${id}-values`});
      for (const v of f.values || []) list.append(el("option", {value: v}));
      input.setAttribute("list", list.id);
      form.append(list, label, input);
    }
  }
}

function filters() {
  const out = {};
  for (const input of document.querySelectorAll("#filters input")) {
    const value = input.value.trim();
    if (value === "") continue;
    const name = input.dataset.filter;
    if (input.dataset.bound) {
      out[name] = {...out[name], [input.dataset.bound]: Number(value)};
    } else {
      out[name] = {in: value.split(",").map((v) => v.trim()).filter((v) => v !== "")};
    }
  }
  return out;
}

let itemFields = [];  // every item attribute: each returned item shows them all

async function loadModel() {
  let model;
  try {
    model = await api("/model");
  } catch (e) {
    showError(e);
    setTimeout(loadModel, 2000);  // 503 while the model loads: try again
    return;
  }
  $("#error").hidden = true;
  $("#model-version").textContent = model.model_version;
  $("#model-items").textContent = model.items.toLocaleString("en");
  $("#model-index").textContent = model.index;
  $("#model-users").textContent = model.users.toLocaleString("en");
  $("#user-ids").replaceChildren(...model.sample_users.map((u) => el("option", {value: u})));
  if (!$("#user-id").value && model.sample_users.length) $("#user-id").placeholder = `e.g. ${model.sample_users[0]}`;
  buildFeatureForm(model.user_features);
  buildFilterForm(model.item_features);
  itemFields = model.item_features.map((f) => f.name);
  document.body.dataset.model = model.model_version;
}

function mode() {
  return document.querySelector("input[name=mode]:checked").value;
}

function query() {
  const body = {k: Number($("#k").value), objective: $("#objective").value, exclude_seen: $("#exclude-seen").checked,
                fields: itemFields};
  const chosen = filters();
  if (Object.keys(chosen).length) body.filters = chosen;
  if (mode() === "known") return {user_id: $("#user-id").value.trim(), ...body};
  const features = {};
  for (const input of document.querySelectorAll("#features input")) {
    if (input.value === "") continue;  // left out: the API names what is missing
    features[input.dataset.feature] = input.dataset.kind === "numeric" ? Number(input.value) : input.value;
  }
  return {user_id: $("#new-user-id").value.trim() || "new-user", ...body, user_features: features};
}

function renderItems(q, answer) {
  const items = answer.items;
  const attributes = [...new Set(items.flatMap((i) => Object.keys(i.attributes || {})))];
  const head = $("#items thead tr");
  head.replaceChildren(...["#", "item", `score (${answer.objective})`, "p_click", "p_conversion", "similarity",
                           ...attributes].map((t) => el("th", {}, t)));
  const sorted = SCORES.indexOf(SORTED_BY[answer.objective]) + 2;
  head.children[sorted].classList.add("sorted");
  const rows = items.map((item, rank) => {
    const tr = el("tr", {"data-item-id": item.item_id});
    tr.append(el("td", {"data-field": "rank"}, String(rank + 1)), el("td", {"data-field": "item_id"}, item.item_id));
    for (const f of SCORES) tr.append(el("td", {"data-field": f}, fmt(item[f])));
    for (const a of attributes) tr.append(el("td", {"data-attribute": a}, String((item.attributes || {})[a] ?? "")));
    tr.children[sorted].classList.add("sorted");
    return tr;
  });
  $("#items tbody").replaceChildren(...rows);
  $("#items").hidden = false;
  const who = q.user_features ? `new user ${answer.user_id}` : `user ${answer.user_id}`;
  $("#results-title").textContent = `Top ${items.length} for ${who}, by ${answer.objective}` +
    (q.exclude_seen ? ", seen items left out" : "") + (q.filters ? ", filtered" : "");
  $("#fallback").hidden = !answer.fallback;
  $("#fallback").textContent = answer.fallback ? `Unknown user: the service answered its ${answer.fallback} ` +
    "fallback (no model scores)." : "";
  drawScatter(items.filter((i) => i.p_click !== undefined && i.p_conversion !== undefined));
}

// p_click against p_conversion of the returned items, an inline SVG scatter.
function drawScatter(items) {
  const svg = $("#scatter");
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  svg.replaceChildren();
  $("#chart").hidden = items.length === 0;
  if (!items.length) return;
  const [W, H, L, B, T, R] = [360, 280, 52, 40, 12, 24];
  const extent = (values) => {
    let lo = Math.min(...values), hi = Math.max(...values);
    const pad = (hi - lo) * 0.08 || Math.max(Math.abs(hi) * 0.05, 1e-3);
    return [lo - pad, hi + pad];
  };
  const [x0, x1] = extent(items.map((i) => i.p_click));
  const [y0, y1] = extent(items.map((i) => i.p_conversion));
  const x = (v) => L + (v - x0) / (x1 - x0) * (W - L - R);
  const y = (v) => H - B - (v - y0) / (y1 - y0) * (H - B - T);
  svg.append(node("line", {class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B}),
             node("line", {class: "axis", x1: L, y1: T, x2: L, y2: H - B}));
  for (const t of [0, 0.5, 1]) {
    const xv = x0 + t * (x1 - x0), yv = y0 + t * (y1 - y0);
    svg.append(node("text", {x: x(xv), y: H - B + 14, "text-anchor": "middle"}, xv.toPrecision(3)),
               node("text", {x: L - 4, y: y(yv) + 4, "text-anchor": "end"}, yv.toPrecision(3)));
  }
  svg.append(node("text", {x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle"}, "p_click"),
             node("text", {x: 12, y: (T + H - B) / 2, "text-anchor": "middle",
                           transform: `rotate(-90 12 ${(T + H - B) / 2})`}, "p_conversion"));
  // Drawn worst first, so the best items sit on top where dots overlap.
  items.map((item, rank) => [item, rank]).reverse().forEach(([item, rank]) => {
    const dot = node("circle", {class: "dot", cx: x(item.p_click), cy: y(item.p_conversion), r: 6});
    dot.append(node("title", {}, `#${rank + 1} item ${item.item_id}: p_click ${fmt(item.p_click)}, ` +
                                 `p_conversion ${fmt(item.p_conversion)}, score ${fmt(item.score)}`));
    svg.append(dot);
    if (rank < 10) {
      svg.append(node("text", {class: "dot-label", x: x(item.p_click) + 7, y: y(item.p_conversion) - 5},
                      String(rank + 1)));
    }
  });
}

async function recommend(q) {
  const results = $("#results");
  results.dataset.state = "loading";
  results.dataset.query = JSON.stringify(q);
  $("#submit").disabled = true;
  try {
    const answer = await api("/recommend", q);
    if (results.dataset.query !== JSON.stringify(q)) return;  // a newer query is on its way
    $("#error").hidden = true;
    renderItems(q, answer);
    results.dataset.state = "done";
  } catch (e) {
    if (results.dataset.query !== JSON.stringify(q)) return;
    showError(e);
    $("#items").hidden = true;
    $("#chart").hidden = true;
    $("#results-title").textContent = "No recommendations for this query.";
    results.dataset.state = "error";
  } finally {
    $("#submit").disabled = false;
  }
}

$("#query").addEventListener("submit", (event) => {
  event.preventDefault();
  lastQuery = query();
  recommend(lastQuery);
});
for (const input of document.querySelectorAll("input[name=mode]")) {
  input.addEventListener("change", () => {
    $("#known-user").hidden = mode() !== "known";
    $("#new-user").hidden = mode() !== "new";
  });
}
// Switching the objective or exclude_seen re-ranks the last query at once.
for (const id of ["#objective", "#exclude-seen"]) {
  $(id).addEventListener("change", () => {
    if (lastQuery) {
      lastQuery = {...lastQuery, objective: $("#objective").value, exclude_seen: $("#exclude-seen").checked};
      recommend(lastQuery);
    }
  });
}
loadModel();
