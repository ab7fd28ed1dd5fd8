/**
 * The `/docs` page of both servers: an OpenAPI document rendered once into one self-contained
 * HTML page (inline style, no scripts, no fonts or CDN), so it works offline from inside the
 * binary and under a CSP that forbids everything else.
 */

/** The page needs nothing but its own inline style. */
export const DOCS_PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

type Json = Record<string, unknown>;

const STYLE = `
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 1.5rem;color:#1d1d1f;background:#fff}
h1{margin-bottom:.2rem}h2{margin-top:2.5rem;border-bottom:1px solid #ddd}h3{margin:0;font-size:1.05rem}
code,pre{font:13px/1.4 ui-monospace,monospace}pre{background:#f5f5f7;padding:.6rem;overflow:auto;border-radius:4px}
section.op{border:1px solid #ddd;border-radius:6px;padding:.8rem 1rem;margin:1rem 0}
.m{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase}
.get{color:#0a6}.post{color:#06c}.patch{color:#a60}.delete{color:#c22}.put{color:#a0a}
table{border-collapse:collapse;margin:.4rem 0 .8rem}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
nav ul{columns:2}a{color:#06c}summary{cursor:pointer;color:#666}h3[id]{margin-top:1.5rem}
@media (prefers-color-scheme:dark){body{background:#111;color:#eee}pre{background:#222}a{color:#6af}}
`;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Inline code spans (`x`) of a description; everything else escaped. */
function text(s: unknown): string {
  return typeof s === "string" ? esc(s).replace(/`([^`]+)`/g, "<code>$1</code>") : "";
}

const anchor = (name: string) => `schema-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;

/** Pretty JSON whose component `$ref`s link to the schema below. */
function json(value: unknown): string {
  return `<pre>${esc(JSON.stringify(value, null, 2)).replace(
    /&#34;#\/components\/schemas\/([A-Za-z0-9_.-]+)&#34;/g,
    (_, name: string) => `<a href="#${anchor(name)}">&#34;#/components/schemas/${name}&#34;</a>`,
  )}</pre>`;
}

/** A one-line type: `string (1..4096)`, `"a" | "b"`, `array of Memory`, links for `$ref`s. */
function typeOf(schema: Json | undefined): string {
  if (!schema || Object.keys(schema).length === 0) return "any";
  if (schema.not && Object.keys(schema.not).length === 0) return "none (refused)";
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.split("/").pop()!;
    return `<a href="#${anchor(name)}">${esc(name)}</a>`;
  }
  if (Array.isArray(schema.enum))
    return schema.enum.map((v) => `<code>${esc(JSON.stringify(v))}</code>`).join(" | ");
  if (schema.const !== undefined) return `<code>${esc(JSON.stringify(schema.const))}</code>`;
  const alternatives = (schema.anyOf ?? schema.oneOf) as Json[] | undefined;
  if (alternatives) return alternatives.map(typeOf).join(" or ");
  if (schema.type === "array") return `array of ${typeOf(schema.items as Json | undefined)}`;
  return esc(Array.isArray(schema.type) ? schema.type.join(" or ") : String(schema.type ?? "any"));
}

/** Bounds, pattern, format and default of a schema, as short notes. */
function notes(schema: Json): string[] {
  const out: string[] = [];
  const range = (lo: unknown, hi: unknown, unit: string) => {
    const safe = (v: unknown) => typeof v === "number" && Math.abs(v) < Number.MAX_SAFE_INTEGER;
    if (lo === 1 && hi === undefined && unit === " characters") out.push("not empty");
    else if (safe(lo) && safe(hi)) out.push(`${lo}..${hi}${unit}`);
    else if (safe(lo)) out.push(`at least ${lo}${unit}`);
    else if (safe(hi)) out.push(`at most ${hi}${unit}`);
  };
  range(schema.minLength, schema.maxLength, " characters");
  range(schema.minimum, schema.maximum, "");
  range(schema.minItems, schema.maxItems, " items");
  if (typeof schema.format === "string") out.push(`format ${esc(schema.format)}`);
  else if (typeof schema.pattern === "string") out.push(`pattern <code>${esc(schema.pattern)}</code>`);
  if (schema.default !== undefined) out.push(`default <code>${esc(JSON.stringify(schema.default))}</code>`);
  if (schema.description) out.push(text(schema.description));
  return out;
}

/** The table rows of an object's fields; the fields of an inline object (or of an array's inline
 * objects) follow as `parent.field` (`parent[].field`), two levels deep. */
function rows(object: Json, prefix: string): string[] {
  const required = new Set((object.required as string[] | undefined) ?? []);
  return Object.entries((object.properties ?? {}) as Record<string, Json>).flatMap(([name, p]) => {
    const row = `<tr><td><code>${esc(prefix + name)}</code>${required.has(name) ? "" : "?"}</td><td>${typeOf(p)}</td><td>${notes(p).join("; ")}</td></tr>`;
    const items = p.items as Json | undefined;
    const inner = p.properties ? p : items?.properties ? items : undefined;
    const depth = prefix.split(".").length;
    if (!inner || depth > 2) return [row];
    return [row, ...rows(inner, `${prefix}${name}${inner === items ? "[]" : ""}.`)];
  });
}

/** An object schema as a table of its fields (each alternative of a union its own table), and
 * the JSON Schema itself folded below. */
function schemaView(schema: Json): string {
  const union = (schema.oneOf ?? schema.anyOf) as Json[] | undefined;
  const tables = union ?? [schema];
  const parts: string[] = [];
  if (schema.description) parts.push(`<p>${text(schema.description)}</p>`);
  if (union) parts.push(`<p>One of these ${union.length}:</p>`);
  for (const t of tables) {
    const props = t.properties as Record<string, Json> | undefined;
    if (!props) {
      parts.push(`<p>${typeOf(t)}${notes(t).length ? `: ${notes(t).join("; ")}` : ""}</p>`);
      continue;
    }
    parts.push("<table><tr><th>field</th><th>type</th><th></th></tr>", ...rows(t, ""), "</table>");
    if (t.additionalProperties && typeof t.additionalProperties === "object")
      parts.push("<p>Other fields are allowed.</p>");
  }
  parts.push(`<details><summary>JSON Schema</summary>${json(schema)}</details>`);
  return parts.join("\n");
}

function operation(path: string, method: string, op: Json): string {
  const id = String(op.operationId ?? `${method}${path}`);
  const security = (op.security as Json[] | undefined) ?? [];
  const params = (op.parameters as Json[] | undefined) ?? [];
  const body = op.requestBody as { content?: Record<string, Json> } | undefined;
  const responses = (op.responses ?? {}) as Record<string, Json>;
  const parts = [
    `<section class="op" id="${esc(id)}">`,
    `<h3><span class="m ${esc(method)}">${esc(method)}</span> <code>${esc(path)}</code></h3>`,
    `<p>${text(op.summary)}</p>`,
    op.description ? `<p>${text(op.description)}</p>` : "",
    `<p>Credentials: ${
      security.length
        ? security.map((s) => `<code>${esc(Object.keys(s).join(", "))}</code>`).join(" or ")
        : "none"
    }</p>`,
  ];
  if (params.length)
    parts.push(
      "<table><tr><th>parameter</th><th>in</th><th>required</th><th>type</th></tr>",
      ...params.map(
        (p) =>
          `<tr><td><code>${esc(String(p.name))}</code></td><td>${esc(String(p.in))}</td><td>${
            p.required ? "yes" : "no"
          }</td><td>${typeOf(p.schema as Json)}${[
            ...notes(p.schema as Json),
            ...(p.description ? [text(p.description)] : []),
          ]
            .map((n) => `; ${n}`)
            .join("")}</td></tr>`,
      ),
      "</table>",
    );
  // The servers take one schema in every media type they accept: shown once.
  const media = Object.values(body?.content ?? {})[0];
  if (media) {
    const types = Object.keys(body!.content!).map((t) => `<code>${esc(t)}</code>`);
    parts.push(`<p>Request body, ${types.join(" or ")}:</p>`, schemaView(media.schema as Json));
    if (media.example !== undefined) parts.push("<p>Example:</p>", json(media.example));
  }
  parts.push("<p>Responses:</p><ul>");
  for (const [status, r] of Object.entries(responses)) {
    const content = Object.entries((r.content ?? {}) as Record<string, Json>);
    const shown = content.map(([type, media]) => {
      const schema = media.schema as Json | undefined;
      const ref = typeof schema?.$ref === "string" ? schema.$ref.split("/").pop()! : undefined;
      return ref
        ? ` <code>${esc(type)}</code> <a href="#${anchor(ref)}">${esc(ref)}</a>`
        : ` <code>${esc(type)}</code>${schema && Object.keys(schema).length && schema.type !== "string" ? schemaView(schema) : ""}`;
    });
    parts.push(`<li><b>${esc(status)}</b> ${text(r.description)}${shown.join("")}</li>`);
  }
  parts.push("</ul></section>");
  return parts.join("\n");
}

/** The whole page. */
export function renderApiPage(doc: Json): string {
  const info = (doc.info ?? {}) as Json;
  const paths = (doc.paths ?? {}) as Record<string, Record<string, Json>>;
  const components = (doc.components ?? {}) as {
    schemas?: Record<string, Json>;
    securitySchemes?: Record<string, Json>;
  };
  const byTag = new Map<string, string[]>();
  const toc = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(paths))
    for (const [method, op] of Object.entries(methods)) {
      const tag = String((op.tags as string[] | undefined)?.[0] ?? "other");
      byTag.set(tag, [...(byTag.get(tag) ?? []), operation(path, method, op)]);
      toc.set(tag, [
        ...(toc.get(tag) ?? []),
        `<li><a href="#${esc(String(op.operationId))}"><b>${esc(method.toUpperCase())}</b> <code>${esc(path)}</code></a></li>`,
      ]);
    }
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    `<title>${esc(String(info.title))} API</title><style>${STYLE}</style></head><body>`,
    `<h1>${esc(String(info.title))}</h1>`,
    `<p>Version ${esc(String(info.version))} · OpenAPI ${esc(String(doc.openapi))} · <a href="openapi.json">openapi.json</a></p>`,
    `<p>${text(info.description)}</p>`,
    "<nav>",
    ...[...toc].map(([tag, items]) => `<h4>${esc(tag)}</h4><ul>${items.join("")}</ul>`),
    "</nav>",
    "<h2>Credentials</h2><ul>",
    ...Object.entries(components.securitySchemes ?? {}).map(
      ([name, s]) =>
        `<li><code>${esc(name)}</code> (${esc(String(s.type))}${s.scheme ? ` ${esc(String(s.scheme))}` : ""}${
          s.in ? `, ${esc(String(s.in))} <code>${esc(String(s.name))}</code>` : ""
        }): ${text(s.description)}</li>`,
    ),
    "</ul>",
    ...[...byTag].map(([tag, ops]) => `<h2>${esc(tag)}</h2>\n${ops.join("\n")}`),
    "<h2>Schemas</h2>",
    ...Object.entries(components.schemas ?? {}).map(
      ([name, schema]) => `<h3 id="${anchor(name)}">${esc(name)}</h3>${schemaView(schema)}`,
    ),
    "</body></html>",
  ].join("\n");
}
