/**
 * Embeddings from Ollama: `POST {url}/api/embed` with `{ model, input: [texts] }`, answered by
 * `{ model, embeddings: [[...], ...] }` (Ollama's documented shape). Texts are sent in batches.
 */
import { z } from "zod";
import type { Embedder } from "../../../core/ports/embedder.ts";
import {
  describeUrl,
  type OllamaOptions,
  ollamaEndpoint,
  postOllama,
  readJson,
  unavailable,
} from "./ollama-http.ts";

export interface OllamaEmbedderOptions extends OllamaOptions {
  /** Expected vector length; learned from the first answer when not given. */
  dimensions?: number;
  /** Texts per request; 32 by default. */
  batchSize?: number;
}

const EmbedResponse = z.object({ embeddings: z.array(z.array(z.number())) });

/** Creates an `Embedder` backed by Ollama's `/api/embed`. Timeout 60 s per batch by default. */
export function createOllamaEmbedder(options: OllamaEmbedderOptions): Embedder {
  const endpoint = ollamaEndpoint(options.url, "api/embed");
  const timeoutMs = options.timeoutMs ?? 60_000;
  const batchSize = Math.max(1, options.batchSize ?? 32);
  let dimensions = options.dimensions ?? 0;

  async function embedBatch(input: string[]): Promise<number[][]> {
    const answer = await postOllama(endpoint, { model: options.model, input }, timeoutMs);
    const body = await readJson(answer, endpoint, timeoutMs);
    const parsed = EmbedResponse.safeParse(body);
    if (!parsed.success) {
      throw unavailable(`Ollama's answer at ${describeUrl(endpoint)} has no "embeddings" list`);
    }
    const vectors = parsed.data.embeddings;
    if (vectors.length !== input.length) {
      throw unavailable(`Ollama answered ${vectors.length} embeddings for ${input.length} texts`);
    }
    for (const v of vectors) {
      if (dimensions === 0 && v.length > 0) dimensions = v.length;
      if (v.length !== dimensions) {
        throw unavailable(
          `Ollama model ${options.model} answered a vector of ${v.length} dimensions; expected ${dimensions}`,
        );
      }
    }
    return vectors;
  }

  return {
    id: `ollama/${options.model}`,
    get dimensions() {
      return dimensions;
    },
    async embed(texts) {
      const out: number[][] = [];
      for (let i = 0; i < texts.length; i += batchSize)
        out.push(...(await embedBatch(texts.slice(i, i + batchSize))));
      return out;
    },
  };
}
