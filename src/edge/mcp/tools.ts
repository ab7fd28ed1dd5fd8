/**
 * The MCP tools' input and output schemas, taken from the zod protocol in src/core so that an
 * assistant is held to exactly what the local API accepts, and their descriptions, written for the
 * model that picks a tool: what it does, and when to use it rather than another. Inputs are strict
 * objects: a misspelt argument is refused by name instead of being dropped.
 */
import { z } from "zod";
import { MemoryFilter } from "../../core/filter.ts";
import { LocalMemory, Memory, NewMemory } from "../../core/memory.ts";
import { Limit, RecallRequest, RecallResponse } from "../../core/protocol/edge-api.ts";
import { AskRequest, ConsolidateResponse, GraphQueryRequest } from "../../core/protocol/heavy.ts";
import { QueueCounts } from "../../core/protocol/sync.ts";
import { GraphAnswer } from "../heavy/service.ts";

const ById = z.strictObject({
  id: Memory.shape.id.describe("the memory's id (a UUID), as a recall or recent gave it"),
});
const NoArguments = z.strictObject({});

export const TOOLS = {
  remember: {
    title: "Remember",
    description:
      "Store a new memory: a fact, preference, event or decision worth keeping across conversations, in plain words. Use it when the user tells you something to keep or you learn something lasting about them; one memory per fact. Use `recall` first when the fact may already be stored (this tool never deduplicates). `kind` is `episodic` (default: something that happened or was said), `identity` (who the user is: name, preferences, lasting traits) or `summary`. `scope` files it under a path such as `work` or `project/dionysus` (default: this server's scope, if any); `occurred_at` is when the remembered event happened, if not now; `private: true` keeps it on this device, never sent to the user's server. Returns the stored memory with its id.",
    // `source` is Dionysus's to set (this client's name), never an argument.
    input: NewMemory.omit({ source: true }).strict(),
    output: z.object({ memory: LocalMemory }),
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  },
  recall: {
    title: "Recall",
    description:
      'Search the user\'s memories by meaning or keywords and get the best matches, most relevant first. Use it before answering anything that may depend on what the user told you earlier (people, plans, preferences, past events). Plain words, no query syntax. `mode: auto` runs keyword search on this device, and semantic search on the user\'s server for questions; `route: local` never leaves the device. `filter` narrows the search: `scope` (`work`, or `project/*` for a scope and everything below it, `*` for all), `tags` (all of them), `kind`, `source` (the client that wrote it, e.g. `mcp:cursor`), `since`/`until` (ISO 8601 or `7d`, `12h`), `metadata` (equal values). A time the query names ("yesterday", "last week", "in May 2023", "on 9 November, 2022") ranks the memories of that time higher (by when they happened, else when they were written); `time: filter` keeps only them, `time: off` ignores it; the answer says how it was read (`time`). For the newest memories regardless of a query use `recent`; for one memory by id use `get`.',
    input: RecallRequest.strict(),
    output: RecallResponse,
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  recent: {
    title: "Recent memories",
    description:
      'List the most recently written or changed memories, newest first, without a query. Use it to see what was stored lately or to get context at the start of a conversation; use `recall` to search. `filter` narrows it as in `recall` (e.g. `{"scope": "work", "since": "7d"}`).',
    input: z.strictObject({
      limit: Limit.default(20).describe("how many, 1..100 (default 20)"),
      filter: MemoryFilter.optional(),
    }),
    output: z.object({ memories: z.array(LocalMemory) }),
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  get: {
    title: "Get a memory",
    description:
      "Read one memory in full by its id (as `recall` or `recent` returned it). Use it when a search result's snippet is not enough.",
    input: ById,
    output: z.object({ memory: LocalMemory }),
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  forget: {
    title: "Forget a memory",
    description:
      "Delete one memory by its id, on this device and (at the next sync) everywhere. Use it only when the user asks to forget something or a stored memory is wrong; to correct a fact, forget the wrong memory and `remember` the right one. Cannot be undone.",
    input: ById,
    output: z.object({ id: z.string(), forgotten: z.literal(true) }),
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  },
  graph_query: {
    title: "Query the knowledge graph",
    description:
      'Explore what the memories say about a person, place, organisation or topic: the entities linked to it (up to `depth` hops) and the memories behind each link. Use it for questions about relationships ("who does Ana work with?"); use `recall` for plain searches. `filter` (as in `recall`) narrows the memories answered; the graph itself stays whole. Runs on the user\'s server: it fails at once, saying why, when the device is offline or not logged in.',
    input: GraphQueryRequest.strict(),
    output: GraphAnswer,
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  consolidate: {
    title: "Consolidate memories",
    description:
      "Start a consolidation on the user's server: near-duplicate memories are merged, a summary memory is written and the knowledge graph is refreshed. It runs in the background and returns the job. Use it rarely, when the user asks to tidy up their memories. Fails at once, saying why, when the device is offline or not logged in.",
    input: NoArguments,
    output: ConsolidateResponse,
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  },
  ask: {
    title: "Ask the memories",
    description:
      "Ask a question in plain language and get an answer written by the user's server's language model from the most relevant memories, with the ids of the memories it used. Use it for questions that need several memories put together; use `recall` when you can read the memories yourself. Fails at once, saying why, when the device is offline, not logged in, or the server has no language model configured.",
    input: AskRequest.strict(),
    output: z.object({
      answer: z.string(),
      sources: z.array(z.object({ id: z.string(), score: z.number() })),
    }),
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  sync_status: {
    title: "Sync status",
    description:
      "Report whether this device's memories are synced with the user's server: writes waiting, whether the server is reachable and logged in, the last success and error. Use it when the user asks whether their memories are backed up or available on their other devices.",
    input: NoArguments,
    output: z.looseObject({ queue: QueueCounts }),
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
} as const;

export type ToolName = keyof typeof TOOLS;
