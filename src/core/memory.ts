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
});
export type Memory = z.infer<typeof Memory>;

/** The edge's view adds where a row came from and when it was last synced and read. */
export const LocalMemory = Memory.extend({
  source: z.enum(["local", "vps"]),
  synced_at: Timestamp.nullable(),
  last_accessed_at: Timestamp.nullable(),
});
export type LocalMemory = z.infer<typeof LocalMemory>;

/** Body of a create request (edge `POST /v1/memories`). */
export const NewMemory = z.object({
  content: z.string(),
  kind: MemoryKind.default("episodic"),
  tags: Tags.default([]),
  metadata: Metadata.default({}),
});
export type NewMemory = z.infer<typeof NewMemory>;

/** Body of an update request (edge `PATCH /v1/memories/:id`); at least one field. */
export const MemoryPatch = z
  .object({
    content: z.string().optional(),
    kind: MemoryKind.optional(),
    tags: Tags.optional(),
    metadata: Metadata.optional(),
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), "nothing to update");
export type MemoryPatch = z.infer<typeof MemoryPatch>;

export { DEFAULT_MAX_CONTENT_BYTES, validateContent, validateMemoryFields } from "./validate.ts";
