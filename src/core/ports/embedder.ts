/**
 * The `Embedder` port: turns texts into fixed-length vectors for semantic search on the VPS.
 * Adapters: `src/core/embedding/` (built in, needs no model: word vectors, the default, and
 * feature hashing) and
 * `src/vps/search/ollama/` (Ollama's `/api/embed`).
 *
 * Invariants:
 * - `embed(texts)` answers one vector per text, in the same order, each of length `dimensions`.
 * - Vectors from different embedders (different `id`) are not comparable: whoever stores them
 *   stores the `id` beside them and re-embeds when it changes.
 * - A dependency that is down (an unreachable Ollama) fails with `DionysusError("unavailable")`.
 */
export interface Embedder {
  /** Stable name of the embedder and its settings, for example `builtin-hash-v1/384` or
   * `ollama/nomic-embed-text`. Changes whenever vectors stop being comparable. */
  readonly id: string;
  /** Length of every vector. An adapter that learns it from its first answer (Ollama without a
   * configured size) reports 0 until then. */
  readonly dimensions: number;
  /** One vector per text, in order. An empty list answers an empty list. */
  embed(texts: string[]): Promise<number[][]>;
}
