/**
 * A fake Ollama (no Ollama can run here): a local HTTP server answering `/api/embed` and
 * `/api/chat` with the response shapes Ollama documents. Embeddings are the built-in embedder's
 * vectors (so similar texts are similar); chat streams a canned answer as NDJSON, or, when asked
 * for JSON (`format: "json"`, entity extraction), the capitalised words of the text as entities.
 */
import { hashEmbed } from "../../src/core/embedding/builtin-embedder.ts";

export interface FakeOllama {
  url: string;
  requests: Array<{ path: string; body: Record<string, unknown> }>;
  /** Makes every request fail with this status until reset (undefined). */
  failWith: number | undefined;
  stop(): void;
}

const enc = new TextEncoder();

function chatLine(content: string, done: boolean): Uint8Array {
  return enc.encode(
    `${JSON.stringify({
      model: "llama3.2",
      created_at: new Date().toISOString(),
      message: { role: "assistant", content },
      done,
      ...(done ? { done_reason: "stop", total_duration: 1000, eval_count: 3 } : {}),
    })}\n`,
  );
}

export function startFakeOllama(): FakeOllama {
  const fake: FakeOllama = {
    url: "",
    requests: [],
    failWith: undefined,
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const body = (await req.json().catch(() => ({}))) as Record<string, unknown>;
      fake.requests.push({ path, body });
      if (fake.failWith) return Response.json({ error: "fake failure" }, { status: fake.failWith });
      if (path === "/api/embed") {
        const input = Array.isArray(body.input) ? (body.input as string[]) : [String(body.input)];
        return Response.json({
          model: body.model,
          embeddings: input.map((t) => hashEmbed(t, 64)),
          total_duration: 1000,
          load_duration: 10,
          prompt_eval_count: input.length,
        });
      }
      if (path === "/api/chat") {
        const messages = (body.messages ?? []) as Array<{ role: string; content: string }>;
        const last = messages.at(-1)?.content ?? "";
        if (body.format === "json") {
          const names = [...new Set(last.match(/\b[A-Z][a-z]+\b/g) ?? [])];
          const answer = JSON.stringify({
            entities: names.map((name) => ({ name, type: "person" })),
            relations: names.length > 1 ? [{ from: names[0], to: names[1], type: "knows" }] : [],
          });
          return new Response(
            new ReadableStream({
              start(c) {
                c.enqueue(chatLine(answer, false));
                c.enqueue(chatLine("", true));
                c.close();
              },
            }),
            { headers: { "content-type": "application/x-ndjson" } },
          );
        }
        const memories = (last.match(/^\[\d+\]/gm) ?? []).length;
        const parts = ["From your notes", ` (${memories} memories):`, " the key is under the mat."];
        return new Response(
          new ReadableStream({
            async start(c) {
              for (const p of parts) {
                c.enqueue(chatLine(p, false));
                await Bun.sleep(1);
              }
              c.enqueue(chatLine("", true));
              c.close();
            },
          }),
          { headers: { "content-type": "application/x-ndjson" } },
        );
      }
      return Response.json({ error: "not found" }, { status: 404 });
    },
  });
  fake.url = `http://127.0.0.1:${server.port}`;
  return fake;
}
