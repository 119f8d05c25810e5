// GET /openapi: a small reader of /openapi/json, self-contained (no CDN, nothing to install), so
// the documents can be read on a machine without network. Everything from the document is put in
// the page as text (textContent), never as HTML.
export const OPENAPI_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kabar API</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 1rem 1.5rem 4rem; color: #1d2330; }
  h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d8dce5; }
  code, pre { font: 13px/1.45 ui-monospace, monospace; }
  pre { background: #f4f6fa; padding: .6rem .8rem; overflow: auto; border-radius: 4px; margin: .3rem 0; }
  details.op { border: 1px solid #d8dce5; border-radius: 6px; margin: .5rem 0; }
  details.op > summary { cursor: pointer; padding: .45rem .7rem; list-style: none; }
  details.op[open] > summary { border-bottom: 1px solid #d8dce5; }
  .body { padding: .3rem .9rem .8rem; }
  .m { display: inline-block; min-width: 4.2rem; font-weight: 700; text-transform: uppercase; }
  .get { color: #0b7a3e; } .post { color: #1f5fbf; } .patch { color: #a15c00; } .delete { color: #b4232a; }
  .lock { color: #7a4b00; font-size: .85em; margin-left: .4rem; }
  table { border-collapse: collapse; margin: .3rem 0; } td, th { border: 1px solid #d8dce5; padding: .2rem .5rem; text-align: left; vertical-align: top; }
  .muted { color: #5b6475; }
</style>
</head>
<body>
<h1 id="title">Kabar API</h1>
<p class="muted" id="meta"></p>
<p id="description"></p>
<p>Documents: <a href="/openapi/json">OpenAPI (JSON)</a> · <a href="/api/v1/asyncapi.json">AsyncAPI of the WebSocket protocol (JSON)</a></p>
<div id="ops"><p class="muted">Loading /openapi/json…</p></div>
<h2>Schemas</h2>
<div id="schemas"></div>
<script>
"use strict";
const el = (tag, attrs, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const kid of kids) e.append(kid);
  return e;
};
const pre = (value) => el("pre", {}, JSON.stringify(value, null, 2));
const METHODS = ["get", "post", "put", "patch", "delete"];
function operation(path, method, op) {
  const summary = el("summary", {}, el("span", { class: "m " + method }, method), el("code", {}, path), "  ", op.summary || "");
  if (op.security && op.security.length) summary.append(el("span", { class: "lock" }, "bearer token"));
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", {}, op.description));
  if (op.parameters && op.parameters.length) {
    const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "schema")));
    for (const p of op.parameters)
      t.append(el("tr", {}, el("td", {}, p.name + (p.required ? " *" : "")), el("td", {}, p.in), el("td", {}, el("code", {}, JSON.stringify(p.schema)))));
    body.append(el("h4", {}, "Parameters"), t);
  }
  if (op.requestBody) {
    body.append(el("h4", {}, "Request body: " + Object.keys(op.requestBody.content || {}).join(", ")));
    const first = Object.values(op.requestBody.content || {})[0];
    if (first) body.append(pre(first.schema));
  }
  body.append(el("h4", {}, "Responses"));
  const t = el("table", {});
  for (const [status, r] of Object.entries(op.responses || {})) {
    const content = r.content && Object.values(r.content)[0];
    const schema = content ? content.schema : undefined;
    const shown = schema && schema.$ref ? el("a", { href: "#schema-" + schema.$ref.split("/").pop() }, schema.$ref.split("/").pop()) : schema ? el("code", {}, JSON.stringify(schema)) : "";
    t.append(el("tr", {}, el("td", {}, el("b", {}, status)), el("td", {}, r.description || ""), el("td", {}, shown)));
  }
  body.append(t);
  return el("details", { class: "op" }, summary, body);
}
fetch("/openapi/json").then((r) => r.json()).then((doc) => {
  document.getElementById("title").textContent = doc.info.title;
  document.getElementById("meta").textContent = "version " + doc.info.version + " · OpenAPI " + doc.openapi;
  document.getElementById("description").textContent = doc.info.description || "";
  const ops = document.getElementById("ops");
  ops.textContent = "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths))
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(path, method, op));
    }
  for (const [tag, list] of byTag) ops.append(el("h2", {}, tag), ...list);
  const schemas = document.getElementById("schemas");
  for (const [name, s] of Object.entries((doc.components && doc.components.schemas) || {}))
    schemas.append(el("h3", { id: "schema-" + name }, name), pre(s));
}).catch((e) => {
  document.getElementById("ops").textContent = "Could not load /openapi/json: " + e;
});
</script>
</body>
</html>
`;
