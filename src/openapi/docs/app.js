// The docs page of tai-gateway: reads the gateway's OpenAPI document (same origin), lists its
// operations by service, and sends requests ("try it"). Document text only ever reaches the
// page as text nodes and attribute values: no innerHTML.
//
// Deep links: #op=<operationId>&<parameter>=<value>&body=<JSON>&run=1 opens an operation,
// fills its inputs and (with run=1) sends it, e.g. #op=tai.Governor.GetPolicy&id=pol-1&run=1.
"use strict";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const SHOWN_HEADERS = ["content-type", "etag", "x-request-id", "www-authenticate", "retry-after",
  "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "grpc-status", "grpc-message"];
const MAX_DEPTH = 6;

const problems = [];
let doc = null;
const forms = new Map();

function problem(text) {
  problems.push(text);
  const list = document.getElementById("problems");
  if (list) list.append(el("li", {}, text));
}

window.addEventListener("error", (e) => {
  const target = e.target;
  if (target && target !== window && (target.src || target.href)) {
    problem("could not load " + (target.src || target.href));
  } else {
    problem("script error: " + e.message);
  }
}, true);
window.addEventListener("unhandledrejection", (e) => problem("script error: " + e.reason));
document.addEventListener("securitypolicyviolation", (e) => {
  problem("blocked by the Content-Security-Policy: " + e.blockedURI + " (" + e.violatedDirective + ")");
});

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** The target of a local `$ref` (`#/components/schemas/x`), or undefined. */
function resolve(ref) {
  if (typeof ref !== "string" || !ref.startsWith("#/")) return undefined;
  let node = doc;
  for (const part of ref.slice(2).split("/")) {
    const key = part.replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === null || typeof node !== "object" || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

function refName(ref) {
  return String(ref).split("/").pop();
}

/** A one-line summary of a schema's type: `string (int64)`, `array of tai.Policy`, … */
function typeText(schema) {
  if (!schema || typeof schema !== "object") return "any";
  if (schema.$ref) return refName(schema.$ref);
  if (Array.isArray(schema.enum)) return "enum: " + schema.enum.join(" | ");
  if (schema.type === "array") return "array of " + typeText(schema.items);
  let text = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type;
  if (!text && schema.anyOf) text = schema.anyOf.map(typeText).join(" | ");
  if (!text && schema.oneOf) text = schema.oneOf.map(typeText).join(" | ");
  if (!text) text = "any";
  if (schema.format) text += " (" + schema.format + ")";
  if (schema.type === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
    text = "map of " + typeText(schema.additionalProperties);
  }
  return text;
}

/** A schema as nested lists of its properties, `$ref`s resolved (each message once per branch). */
function schemaNode(schema, seen, depth) {
  if (!schema || typeof schema !== "object") return el("span", { class: "type" }, "any");
  let target = schema;
  let name = null;
  if (schema.$ref) {
    name = refName(schema.$ref);
    target = resolve(schema.$ref);
    if (!target) return el("span", { class: "type" }, name + " (unresolved)");
    if (seen.includes(name) || depth >= MAX_DEPTH) {
      return el("span", { class: "type" }, name + (seen.includes(name) ? " (recursive, see above)" : " …"));
    }
    seen = seen.concat([name]);
  }
  const wrap = el("div", {});
  const head = el("span", { class: "type" }, name ? name + ": " + typeText(target) : typeText(target));
  wrap.append(head);
  if (target.description) wrap.append(" — ", target.description);
  if (target.type === "array" && target.items) {
    wrap.append(el("ul", { class: "schema" }, el("li", {}, "items: ", schemaNode(target.items, seen, depth + 1))));
  }
  const props = target.properties || {};
  const required = new Set(target.required || []);
  const rows = Object.entries(props).map(([prop, sub]) => {
    const item = el("li", {}, el("code", {}, prop), ": ");
    const inner = sub && (sub.$ref || sub.properties || sub.items)
      ? schemaNode(sub, seen, depth + 1)
      : el("span", {}, el("span", { class: "type" }, typeText(sub)), sub && sub.description ? " — " + sub.description : "");
    item.append(inner);
    if (required.has(prop)) item.append(" ", el("span", { class: "required" }, "required"));
    if (sub && sub.readOnly) item.append(" ", el("span", { class: "muted" }, "read-only"));
    if (sub && sub.writeOnly) item.append(" ", el("span", { class: "muted" }, "write-only"));
    return item;
  });
  if (rows.length) wrap.append(el("ul", { class: "schema" }, rows));
  if (target.additionalProperties && typeof target.additionalProperties === "object" && !rows.length) {
    wrap.append(el("ul", { class: "schema" }, el("li", {}, "values: ", schemaNode(target.additionalProperties, seen, depth + 1))));
  }
  return wrap;
}

/** A small example value of a schema, for the body field. */
function sample(schema, seen, depth) {
  if (!schema || typeof schema !== "object" || depth > 3) return null;
  if (schema.$ref) {
    const name = refName(schema.$ref);
    if (seen.includes(name)) return null;
    return sample(resolve(schema.$ref), seen.concat([name]), depth);
  }
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "object": {
      const out = {};
      for (const [prop, sub] of Object.entries(schema.properties || {})) {
        if (sub && sub.readOnly) continue;
        out[prop] = sample(sub, seen, depth + 1);
      }
      return out;
    }
    case "array": return [];
    case "string": return "";
    case "integer": case "number": return 0;
    case "boolean": return false;
    default: return null;
  }
}

/** Every operation of the document: method, path, operation. */
function operations() {
  const out = [];
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      if (item[method]) out.push({ method: method.toUpperCase(), path, op: item[method], shared: item.parameters });
    }
    for (const [method, op] of Object.entries(item["x-tai-custom-operations"] || {})) {
      out.push({ method, path, op, shared: item.parameters });
    }
  }
  return out;
}

function parametersOf(entry) {
  const list = (entry.shared || []).concat(entry.op.parameters || []);
  return list.map((p) => (p && p.$ref ? resolve(p.$ref) : p)).filter(Boolean);
}

function jsonSchemaOf(content) {
  if (!content) return undefined;
  const json = content["application/json"];
  return json ? json.schema : undefined;
}

function parametersTable(params) {
  if (!params.length) return el("p", { class: "muted" }, "No parameters.");
  return el("table", {},
    el("thead", {}, el("tr", {}, ["name", "in", "type", "description"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, params.map((p) => el("tr", {},
      el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "required" }, " required") : ""),
      el("td", {}, p.in),
      el("td", {}, typeText(p.schema)),
      el("td", {}, p.description || "")))));
}

function bodySection(title, holder) {
  const section = el("div", {}, el("h4", {}, title));
  const content = holder && (holder.content || (holder.$ref && resolve(holder.$ref).content));
  if (!content || !Object.keys(content).length) {
    section.append(el("p", { class: "muted" }, holder && holder.description ? holder.description : "None."));
    return section;
  }
  for (const [type, media] of Object.entries(content)) {
    section.append(el("p", {}, el("code", {}, type), holder.description ? " — " + holder.description : ""));
    if (media && media.schema) section.append(schemaNode(media.schema, [], 0));
  }
  return section;
}

/** The "try it" form of an operation. */
function tryForm(entry, params, id) {
  const form = el("form", { class: "try", "aria-label": "Try " + id });
  const inputs = new Map();
  for (const p of params.filter((q) => q.in === "path" || q.in === "query")) {
    const inputId = "in-" + id + "-" + p.name;
    const hint = p.in === "query" && p.schema && p.schema.type === "array" ? " (several: separate with commas)" : "";
    const input = el("input", { id: inputId, name: p.name, required: p.in === "path", autocomplete: "off" });
    inputs.set(p.name, { input, param: p });
    form.append(el("label", { for: inputId }, p.name + " (" + p.in + ")" + hint), input);
  }
  const bodySchema = entry.op.requestBody && jsonSchemaOf(entry.op.requestBody.content);
  let body = null;
  if (entry.op.requestBody) {
    const bodyId = "body-" + id;
    body = el("textarea", { id: bodyId, rows: 8, spellcheck: "false" });
    body.value = bodySchema ? JSON.stringify(sample(bodySchema, [], 0), null, 2) : "";
    form.append(el("label", { for: bodyId }, "JSON body"), body);
  }
  const output = el("div", { class: "result", id: "result-" + id, "aria-live": "polite" });
  form.append(el("button", { type: "submit" }, "Send"), output);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(entry, inputs, body, output);
  });
  forms.set(id, { form, inputs, body });
  return form;
}

/** The request URL: path parameters substituted (escaped; multi-segment ones keep their `/`), query appended. */
function urlOf(entry, inputs) {
  let path = entry.path;
  const query = new URLSearchParams();
  for (const [name, { input, param }] of inputs) {
    const value = input.value;
    if (param.in === "path") {
      let escaped = encodeURIComponent(value);
      if (param["x-tai-multi-segment"]) escaped = escaped.replace(/%2F/gi, "/");
      path = path.split("{" + name + "}").join(escaped);
    } else if (value !== "") {
      const many = param.schema && param.schema.type === "array";
      for (const one of many ? value.split(",") : [value]) query.append(name, one.trim());
    }
  }
  const text = query.toString();
  return path + (text ? "?" + text : "");
}

/** The header carrying the pasted token, as the document's security scheme names it. */
function tokenHeader(token) {
  const schemes = (doc.components && doc.components.securitySchemes) || {};
  for (const scheme of Object.values(schemes)) {
    if (scheme.type === "apiKey" && scheme.in === "header") return [scheme.name, token];
  }
  return ["Authorization", "Bearer " + token];
}

async function send(entry, inputs, body, output) {
  output.replaceChildren(el("p", {}, "Sending…"));
  const headers = { Accept: "application/json" };
  const token = document.getElementById("token").value.trim();
  if (token) {
    const [name, value] = tokenHeader(token);
    headers[name] = value;
  }
  const init = { method: entry.method, headers, credentials: "same-origin" };
  if (body && body.value.trim() !== "") {
    headers["Content-Type"] = "application/json";
    init.body = body.value;
  }
  const url = urlOf(entry, inputs);
  try {
    const response = await fetch(url, init);
    const text = await response.text();
    let shown = text;
    if ((response.headers.get("content-type") || "").includes("json")) {
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { shown = text; }
    }
    const rows = SHOWN_HEADERS.filter((h) => response.headers.has(h))
      .map((h) => el("tr", {}, el("th", { scope: "row" }, h), el("td", {}, response.headers.get(h))));
    output.replaceChildren(
      el("p", { class: "status" }, entry.method + " " + url + " → ", el("strong", {}, response.status + " " + response.statusText)),
      rows.length ? el("table", { class: "headers" }, el("tbody", {}, rows)) : "",
      el("pre", { class: "answer", "data-status": response.status }, shown.length > 200000 ? shown.slice(0, 200000) + "\n…" : shown));
  } catch (error) {
    output.replaceChildren(el("p", { class: "status" }, "The request failed: " + error));
  }
}

function operationNode(entry) {
  const op = entry.op;
  const id = op.operationId || entry.method + " " + entry.path;
  const params = parametersOf(entry);
  const ok = op.responses ? op.responses["200"] || op.responses["201"] : undefined;
  return el("details", { class: "op", id: "op-" + id, "data-operation": id },
    el("summary", {},
      el("h3", {}, el("span", { class: "method" }, entry.method), " ", el("code", {}, entry.path)),
      " ", el("span", { class: "op-id" }, id)),
    op.description ? el("p", {}, op.description) : "",
    el("p", {}, el("a", { href: "#op=" + encodeURIComponent(id) }, "Link to this operation")),
    el("h4", {}, "Parameters"), parametersTable(params),
    bodySection("Request body", op.requestBody),
    bodySection("Response", ok),
    tryForm(entry, params, id));
}

function render() {
  const title = (doc.info && doc.info.title) || "API";
  document.title = "API docs · " + title;
  document.getElementById("title").textContent = title + " API";
  const byTag = new Map();
  const all = operations();
  for (const entry of all) {
    const tag = (entry.op.tags && entry.op.tags[0]) || "other";
    if (!byTag.has(tag)) byTag.set(tag, []);
    byTag.get(tag).push(entry);
  }
  const descriptions = new Map((doc.tags || []).map((t) => [t.name, t.description]));
  const main = document.getElementById("operations");
  const toc = document.getElementById("toc");
  for (const tag of [...byTag.keys()].sort()) {
    const entries = byTag.get(tag);
    const section = el("section", { id: "service-" + tag, "aria-labelledby": "h-" + tag },
      el("h2", { id: "h-" + tag }, tag),
      descriptions.get(tag) ? el("p", {}, descriptions.get(tag)) : "",
      entries.map(operationNode));
    main.append(section);
    toc.append(el("h2", {}, tag), el("ul", {}, entries.map((e) => {
      const id = e.op.operationId || e.method + " " + e.path;
      return el("li", {}, el("a", { href: "#op=" + encodeURIComponent(id) }, e.method + " " + e.path));
    })));
  }
  document.getElementById("status").textContent =
    all.length + " operations in " + byTag.size + " services, from " + document.body.dataset.openapi;
}

/** Opens (fills, and with run=1 sends) the operation a `#op=…` fragment names. */
function follow() {
  const args = new URLSearchParams(location.hash.slice(1));
  const id = args.get("op");
  if (!id) return;
  const node = document.getElementById("op-" + id);
  const entry = forms.get(id);
  if (!node || !entry) {
    problem("no operation " + id + " in the document");
    return;
  }
  node.open = true;
  for (const [name, value] of args) {
    if (name === "op" || name === "run") continue;
    if (name === "body" && entry.body) entry.body.value = value;
    else if (entry.inputs.has(name)) entry.inputs.get(name).input.value = value;
  }
  node.scrollIntoView();
  if (args.get("run") === "1") entry.form.requestSubmit();
}

function checkResources() {
  const sheet = document.querySelector("link[rel=stylesheet]");
  if (!sheet || !sheet.sheet) problem("the style sheet did not load");
  for (const entry of performance.getEntriesByType("resource")) {
    if (entry.responseStatus >= 400) problem("could not load " + entry.name + " (" + entry.responseStatus + ")");
  }
}

async function start() {
  const path = document.body.dataset.openapi;
  checkResources();
  try {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(path + " answered " + response.status);
    doc = await response.json();
  } catch (error) {
    problem("could not read the OpenAPI document: " + error.message);
    document.getElementById("status").textContent = "The OpenAPI document could not be read.";
    document.body.dataset.state = "failed";
    return;
  }
  render();
  document.body.dataset.state = "ready";
  window.addEventListener("hashchange", follow);
  follow();
}

start();
