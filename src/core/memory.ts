/**
 * The memory model shared by the edge and the VPS. One schema is both the runtime validator
 * and the TypeScript type (`Memory` the value, `Memory` the type).
 */
import { z } from "zod";
import { isHlc } from "./hlc.ts";

/** `episodic` is the default; `identity` memories form the identity baseline a new device pulls
 * first; `summary` memories are written by consolidation. */
export const MemoryKind = z.enum(["episodic", "identity", "summary"]);
export type MemoryKind = z.infer<typeof MemoryKind>;

export const Tag = z
  .string()
  .trim()
  .min(1, "tags must not be empty")
  .max(64, "a tag is at most 64 characters");
export const Tags = z.array(Tag).max(64, "at most 64 tags");
export const Metadata = z.record(z.string(), z.unknown());
export const HlcStamp = z.string().refine(isHlc, "not a hybrid logical clock stamp");
export const Timestamp = z.iso.datetime({ offset: true });

/** Longest scope, in characters. */
export const MAX_SCOPE_CHARS = 128;
/** A segment: `a-z0-9._-`, not only dots (`.` and `..` read as paths would climb out of a scope). */
const SCOPE_SEGMENT = "(?!\\.+(?:/|$))[a-z0-9._-]+";
const SCOPE_RE = new RegExp(`^${SCOPE_SEGMENT}(/${SCOPE_SEGMENT})*$`);

/**
 * Where a memory belongs: a path such as `work` or `project/dionysus`. Segments of `a-z`, `0-9`,
 * `.`, `_` and `-`, separated by `/`, none empty or only dots, at most {@link MAX_SCOPE_CHARS}
 * characters.
 * Scopes are case-insensitive: they are stored in lower case (`Work` is `work`).
 */
export const Scope = z
  .string()
  .trim()
  .toLowerCase()
  .max(MAX_SCOPE_CHARS, `a scope is at most ${MAX_SCOPE_CHARS} characters`)
  .regex(
    SCOPE_RE,
    "a scope is segments of a-z, 0-9, '.', '_' and '-' (not only dots) separated by '/' (e.g. project/dionysus)",
  );
export type Scope = z.infer<typeof Scope>;

/**
 * Which client wrote a memory, set by Dionysus and never by the caller: `cli`, `api` (the edge
 * HTTP API), `mcp:<client>` (the MCP server; see {@link mcpSource}), `import`, `vps` (written by
 * the server itself, e.g. consolidation), `unknown` (written before sources were recorded, or
 * pushed by an older edge).
 */
export const MemorySource = z
  .string()
  .regex(
    /^(cli|api|import|vps|unknown|mcp:[a-z0-9._-]{1,64})$/,
    "source is one of cli, api, import, vps, unknown or mcp:<client>",
  );
export type MemorySource = z.infer<typeof MemorySource>;

/** The `source` of a memory written through MCP by the client named `clientName` (its
 * `clientInfo.name`): `mcp:` and the name in lower case, other characters as `-`. */
export function mcpSource(clientName: string): MemorySource {
  const name = clientName
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64);
  return `mcp:${name || "unknown"}`;
}

/** A memory as it travels between edge and VPS. `deleted` memories are tombstones: content
 * is emptied, the row stays so that the delete can travel and win over older writes. */
export const Memory = z.object({
  id: z.uuid(),
  content: z.string(),
  kind: MemoryKind,
  tags: Tags,
  metadata: Metadata,
  embedding: z.array(z.number()).nullable().optional(),
  created_at: Timestamp,
  updated_at: Timestamp,
  hlc: HlcStamp,
  deleted: z.boolean(),
  origin_device: z.string().min(1).max(64),
  /** Added with protocol 2; an older peer omits them and gets these defaults. */
  scope: Scope.nullable().default(null),
  source: MemorySource.default("unknown"),
  /** When the remembered event happened (may differ from `created_at`). */
  occurred_at: Timestamp.nullable().default(null),
});
export type Memory = z.infer<typeof Memory>;

/**
 * The edge's view adds `origin` (where the row came from: written on this device, or pulled from
 * the VPS), `private` (kept on this device only, never sent to the VPS) and when it was last
 * synced and read.
 */
export const LocalMemory = Memory.extend({
  origin: z.enum(["local", "vps"]),
  private: z.boolean(),
  synced_at: Timestamp.nullable(),
  last_accessed_at: Timestamp.nullable(),
});
export type LocalMemory = z.infer<typeof LocalMemory>;

/** `source` is set by Dionysus: a write body that names it is refused. */
const NoSource = z.never("source is set by Dionysus, not by the caller").optional();

/** Body of a create request (edge `POST /v1/memories`). */
export const NewMemory = z.object({
  content: z.string(),
  kind: MemoryKind.default("episodic"),
  tags: Tags.default([]),
  metadata: Metadata.default({}),
  /** Absent: the default scope of the daemon or client, if any, else none. */
  scope: Scope.nullable().optional(),
  occurred_at: Timestamp.nullable().optional(),
  /** Kept on this device only: never sent to the VPS. */
  private: z.boolean().default(false),
  source: NoSource,
});
export type NewMemory = z.infer<typeof NewMemory>;
/** What a caller may pass to a create (defaults not yet applied). */
export type NewMemoryInput = z.input<typeof NewMemory>;

/** Body of an update request (edge `PATCH /v1/memories/:id`); at least one field. */
export const MemoryPatch = z
  .object({
    content: z.string().optional(),
    kind: MemoryKind.optional(),
    tags: Tags.optional(),
    metadata: Metadata.optional(),
    /** `null` clears it. */
    scope: Scope.nullable().optional(),
    occurred_at: Timestamp.nullable().optional(),
    /** `true` takes a shared memory off the VPS (a delete is sent, the local copy stays);
     * `false` shares a private one (sent like a new write). */
    private: z.boolean().optional(),
    source: NoSource,
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), "nothing to update");
export type MemoryPatch = z.infer<typeof MemoryPatch>;

export { DEFAULT_MAX_CONTENT_BYTES, validateContent, validateMemoryFields } from "./validate.ts";
