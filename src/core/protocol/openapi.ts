/**
 * OpenAPI 3.1 documents built from the zod protocol schemas, so the documents cannot drift from
 * what the servers validate: each server lists its operations (method, path, request and
 * response schemas, error statuses) in a route table and this module turns the table into a
 * document. Request bodies and parameters are the schemas' input side (defaults make a field
 * optional); responses are their output side, and the named ones land in `components.schemas`.
 * OpenAPI 3.1 schemas are JSON Schema 2020-12, which is what `z.toJSONSchema` writes.
 */
import { z } from "zod";
import { DionysusError, type ErrorCode, ErrorCodes, toProblem } from "../errors.ts";
import { OAuthError } from "./auth.ts";

export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

/** One answer of an operation: a JSON schema, another media type, or no body. */
export interface ResponseSpec {
  description: string;
  /** The JSON body (output side of the schema); absent: no body or a non-JSON one. */
  schema?: z.ZodType;
  /** Media type of a body that is not `application/json` (HTML, NDJSON, SSE, Prometheus text). */
  mediaType?: string;
  headers?: Record<string, string>;
}

export interface OperationSpec {
  method: HttpMethod;
  /** OpenAPI path, parameters as `{id}`. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  /** Names of security schemes any one of which is accepted; empty: no credentials. */
  security: string[];
  /** Path parameters (every `{name}` of the path; a missing one is documented as a string). */
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** Request headers the route reads (names as sent). */
  headers?: z.ZodObject;
  /** Request body; `mediaTypes` defaults to `application/json`. */
  body?: { schema: z.ZodType; mediaTypes?: string[]; description?: string; example?: unknown };
  responses: Record<number, ResponseSpec>;
  /** Error statuses answered as problem+json. */
  problems?: number[];
  /** Error statuses answered in the OAuth shape `{error, error_description}` (RFC 6749 §5.2). */
  oauthErrors?: number[];
}

export interface ApiSpec {
  title: string;
  version: string;
  description: string;
  /** OpenAPI security schemes, by name. */
  securitySchemes: Record<string, object>;
  /** Response schemas shown as named components (referenced wherever they occur). */
  components: Record<string, z.ZodType>;
  operations: OperationSpec[];
  /** Extra top-level fields (`x-…`). */
  extensions?: Record<string, unknown>;
}

/** RFC 9457 problem details, as both servers render a {@link import("../errors.ts").DionysusError}. */
export const ProblemSchema = z
  .object({
    type: z.string().describe("`https://dionysus.dev/errors/<code>`"),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().describe("What went wrong, in one line (names the field for bad input)."),
    code: z
      .enum(Object.keys(ErrorCodes) as [keyof typeof ErrorCodes, ...Array<keyof typeof ErrorCodes>])
      .describe("Stable error code; scripts match on it."),
    instance: z
      .string()
      .optional()
      .describe("The edge: the request path. The VPS: the request id (also in `x-request-id`)."),
  })
  .catchall(z.unknown())
  .describe("RFC 9457 problem details (`application/problem+json`); extra members carry details.");

const REF = "#/components/schemas/";

/** The status text of the statuses the servers answer. */
const STATUS_TEXT: Record<number, string> = {
  400: "Bad input",
  401: "Missing or wrong credentials",
  403: "Forbidden",
  404: "Not found",
  409: "Conflict",
  413: "Body too large",
  415: "Body is not JSON",
  429: "Rate limited (see Retry-After)",
  500: "Unexpected failure",
  503: "A dependency is unavailable",
};

/** The error code a status stands for, for the examples. */
function codeOf(status: number): ErrorCode {
  const hit = Object.entries(ErrorCodes).find(([, s]) => s === status);
  return hit ? (hit[0] as ErrorCode) : "internal";
}

type Json = Record<string, unknown>;

/** JSON Schema of a schema's input side, inlined (request bodies and parameters). */
function inputSchema(schema: z.ZodType): Json {
  const { $schema: _, ...json } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Json;
  return json;
}

/** The parameters of one operation. */
function parameters(op: OperationSpec): Json[] {
  const out: Json[] = [];
  const pathSchema = op.params ? inputSchema(op.params) : { properties: {} };
  const pathProps = (pathSchema.properties ?? {}) as Record<string, Json>;
  for (const m of op.path.matchAll(/\{([^}]+)\}/g)) {
    const name = m[1]!;
    const { description, ...schema } = pathProps[name] ?? { type: "string" };
    out.push({ name, in: "path", required: true, ...(description ? { description } : {}), schema });
  }
  for (const [where, schema] of [
    ["query", op.query],
    ["header", op.headers],
  ] as const) {
    if (!schema) continue;
    const json = inputSchema(schema);
    const required = new Set((json.required ?? []) as string[]);
    for (const [name, property] of Object.entries((json.properties ?? {}) as Record<string, Json>)) {
      const { description, ...rest } = property;
      out.push({
        name,
        in: where,
        required: required.has(name),
        ...(description ? { description } : {}),
        schema: rest,
      });
    }
  }
  return out;
}

/** Builds the OpenAPI 3.1 document of one server. */
export function openApiDocument(spec: ApiSpec): Json {
  // One pass over every response schema, so that named components are `$ref`s wherever they occur.
  const registry = z.registry<{ id: string }>();
  const ids = new Map<z.ZodType, string>();
  const oauth = spec.operations.some((op) => op.oauthErrors?.length);
  const named = { ...spec.components, Problem: ProblemSchema, ...(oauth ? { OAuthError } : {}) };
  for (const [name, schema] of Object.entries(named)) {
    if (ids.has(schema)) continue;
    ids.set(schema, name);
    registry.add(schema, { id: name });
  }
  const where = new Map<string, string>();
  for (const op of spec.operations)
    for (const [status, r] of Object.entries(op.responses))
      if (r.schema && !ids.has(r.schema)) {
        const id = `__response${where.size}`;
        where.set(id, `${op.method.toUpperCase()} ${op.path} ${status}`);
        ids.set(r.schema, id);
        registry.add(r.schema, { id });
      }
  const generated = z.toJSONSchema(registry, {
    io: "output",
    unrepresentable: "any",
    uri: (id) => `${REF}${id}`,
  }).schemas as Record<string, Json>;
  const strip = ({ $schema: _, $id: __, id: ___, ...rest }: Json): Json => {
    const nested = /"#\/components\/schemas\/(__response\d+)"/.exec(JSON.stringify(rest));
    if (nested)
      throw new Error(
        `the response schema of ${where.get(nested[1]!)} is used inside another schema: name it in the components`,
      );
    return rest;
  };
  const schemaFor = (schema: z.ZodType): Json => {
    const id = ids.get(schema)!;
    return id.startsWith("__") ? strip(generated[id]!) : { $ref: `${REF}${id}` };
  };
  const components: Record<string, Json> = {};
  for (const [id, json] of Object.entries(generated)) if (!id.startsWith("__")) components[id] = strip(json);

  const paths: Record<string, Record<string, Json>> = {};
  for (const op of spec.operations) {
    const responses: Record<string, Json> = {};
    for (const [status, r] of Object.entries(op.responses)) {
      const headers = r.headers
        ? Object.fromEntries(
            Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: "string" } }]),
          )
        : undefined;
      const content = r.schema
        ? { [r.mediaType ?? "application/json"]: { schema: schemaFor(r.schema) } }
        : r.mediaType
          ? { [r.mediaType]: { schema: r.mediaType.endsWith("json") ? {} : { type: "string" } } }
          : undefined;
      responses[status] = {
        description: r.description,
        ...(headers ? { headers } : {}),
        ...(content ? { content } : {}),
      };
    }
    for (const status of op.problems ?? [])
      responses[status] = {
        description: STATUS_TEXT[status] ?? "Error",
        content: {
          "application/problem+json": {
            schema: { $ref: `${REF}Problem` },
            example: toProblem(new DionysusError(codeOf(status), "…", { status })),
          },
        },
      };
    for (const status of op.oauthErrors ?? [])
      responses[status] = {
        description: `${STATUS_TEXT[status] ?? "Error"} (OAuth error shape)`,
        content: { "application/json": { schema: { $ref: `${REF}OAuthError` } } },
      };
    const params = parameters(op);
    const operation: Json = {
      operationId: operationId(op),
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      tags: [op.tag],
      security: op.security.map((name) => ({ [name]: [] })),
      ...(params.length ? { parameters: params } : {}),
      ...(op.body
        ? {
            requestBody: {
              required: true,
              ...(op.body.description ? { description: op.body.description } : {}),
              content: Object.fromEntries(
                (op.body.mediaTypes ?? ["application/json"]).map((type) => [
                  type,
                  {
                    schema: inputSchema(op.body!.schema),
                    ...(op.body!.example !== undefined ? { example: op.body!.example } : {}),
                  },
                ]),
              ),
            },
          }
        : {}),
      responses,
    };
    paths[op.path] ??= {};
    paths[op.path]![op.method] = operation;
  }

  return {
    openapi: "3.1.0",
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    info: { title: spec.title, version: spec.version, description: spec.description },
    ...(spec.extensions ?? {}),
    tags: [...new Set(spec.operations.map((o) => o.tag))].map((name) => ({ name })),
    paths,
    components: { schemas: components, securitySchemes: spec.securitySchemes },
  };
}

/** `post /v1/memories/{id}` → `postV1MemoriesById`. */
export function operationId(op: Pick<OperationSpec, "method" | "path">): string {
  const words = op.path
    .split("/")
    .filter(Boolean)
    .map((part) => {
      const param = /^\{(.+)\}$/.exec(part);
      const word = param ? `by_${param[1]}` : part;
      return word
        .split(/[^A-Za-z0-9]+/)
        .filter(Boolean)
        .map((w) => w[0]!.toUpperCase() + w.slice(1))
        .join("");
    });
  return op.method + (words.join("") || "Root");
}
