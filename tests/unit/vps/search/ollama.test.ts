/**
 * No Ollama can run here, so these tests run the adapters against a fake Ollama: a local Bun.serve
 * server answering with the response shapes Ollama documents for /api/embed and /api/chat.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { DionysusError } from "../../../../src/core/errors.ts";
import { createOllamaChat } from "../../../../src/vps/search/ollama/ollama-chat.ts";
import { createOllamaEmbedder } from "../../../../src/vps/search/ollama/ollama-embedder.ts";

type Handler = (req: Request, body: Record<string, unknown>) => Response | Promise<Response>;
let handler: Handler = () => new Response("no handler", { status: 500 });
const requests: { path: string; body: Record<string, unknown> }[] = [];
let server: ReturnType<typeof Bun.serve>;
let url: string;

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = (await req.json()) as Record<string, unknown>;
      requests.push({ path: new URL(req.url).pathname, body });
      return handler(req, body);
    },
  });
  url = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.stop(true));
afterEach(() => {
  requests.length = 0;
});

const vectorFor = (text: string, dims = 4) => Array.from({ length: dims }, (_, i) => (text.length + i) / 10);

/** Ollama's documented /api/embed answer. */
function embedAnswer(model: string, input: string[], dims = 4): Response {
  return Response.json({
    model,
    embeddings: input.map((t) => vectorFor(t, dims)),
    total_duration: 14143917,
    load_duration: 1019500,
    prompt_eval_count: 8,
  });
}

/** Ollama's documented streamed /api/chat answer: NDJSON chunks, the last with done: true. */
function chatStream(parts: string[], opts: { errorAfter?: number; stallAfter?: number } = {}): Response {
  const enc = new TextEncoder();
  const stream = new ReadableStream({
    async start(controller) {
      for (const [i, part] of parts.entries()) {
        if (opts.errorAfter === i) {
          controller.enqueue(
            enc.encode(`${JSON.stringify({ error: "model runner has unexpectedly stopped" })}\n`),
          );
          controller.close();
          return;
        }
        if (opts.stallAfter === i) {
          await Bun.sleep(2_000);
          controller.close();
          return;
        }
        const line = JSON.stringify({
          model: "llama3.2",
          created_at: "2026-11-27T10:00:00.000000Z",
          message: { role: "assistant", content: part },
          done: false,
        });
        // Split each line in two writes so that the adapter must reassemble lines.
        controller.enqueue(enc.encode(line.slice(0, 10)));
        await Bun.sleep(1);
        controller.enqueue(enc.encode(`${line.slice(10)}\n`));
      }
      controller.enqueue(
        enc.encode(
          `${JSON.stringify({
            model: "llama3.2",
            created_at: "2026-11-27T10:00:01.000000Z",
            message: { role: "assistant", content: "" },
            done: true,
            done_reason: "stop",
            total_duration: 4883583458,
            eval_count: 259,
          })}\n`,
        ),
      );
      controller.close();
    },
  });
  return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const s of it) out.push(s);
  return out;
}

async function expectUnavailable(p: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DionysusError);
  expect((err as DionysusError).code).toBe("unavailable");
  expect((err as DionysusError).message).toMatch(message);
}

async function closedPortUrl(): Promise<string> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
  const port = s.port;
  await s.stop(true);
  return `http://127.0.0.1:${port}`;
}

describe("Ollama embedder (fake Ollama)", () => {
  test("posts {model, input} to /api/embed and returns the embeddings in order", async () => {
    handler = (_req, body) => embedAnswer(String(body.model), body.input as string[]);
    const e = createOllamaEmbedder({ url, model: "nomic-embed-text" });
    expect(e.id).toBe("ollama/nomic-embed-text");
    expect(e.dimensions).toBe(0);
    const out = await e.embed(["a", "bbb"]);
    expect(out).toEqual([vectorFor("a"), vectorFor("bbb")]);
    expect(e.dimensions).toBe(4);
    expect(requests).toEqual([
      { path: "/api/embed", body: { model: "nomic-embed-text", input: ["a", "bbb"] } },
    ]);
  });

  test("sends large inputs in batches and keeps the order", async () => {
    handler = (_req, body) => embedAnswer(String(body.model), body.input as string[]);
    const e = createOllamaEmbedder({ url: `${url}/`, model: "m", batchSize: 2 });
    const texts = ["a", "bb", "ccc", "dddd", "eeeee"];
    expect(await e.embed(texts)).toEqual(texts.map((t) => vectorFor(t)));
    expect(requests.map((r) => (r.body.input as string[]).length)).toEqual([2, 2, 1]);
    expect(await e.embed([])).toEqual([]);
  });

  test("a missing model (Ollama's 404 with an error body) is unavailable with Ollama's reason", async () => {
    handler = () => Response.json({ error: 'model "nope" not found, try pulling it first' }, { status: 404 });
    await expectUnavailable(
      createOllamaEmbedder({ url, model: "nope" }).embed(["x"]),
      /answered 404 .*model "nope" not found/,
    );
  });

  test("vectors of the wrong size or a malformed answer are unavailable", async () => {
    handler = (_req, body) => embedAnswer("m", body.input as string[], 8);
    await expectUnavailable(
      createOllamaEmbedder({ url, model: "m", dimensions: 4 }).embed(["x"]),
      /8 dimensions; expected 4/,
    );
    handler = () => Response.json({ embedding: [1, 2] });
    await expectUnavailable(createOllamaEmbedder({ url, model: "m" }).embed(["x"]), /no "embeddings" list/);
  });

  test("Ollama down: not reachable", async () => {
    const down = await closedPortUrl();
    await expectUnavailable(createOllamaEmbedder({ url: down, model: "m" }).embed(["x"]), /not reachable/);
  });

  test("Ollama too slow: timed out", async () => {
    handler = async (_req, body) => {
      await Bun.sleep(500);
      return embedAnswer("m", body.input as string[]);
    };
    await expectUnavailable(
      createOllamaEmbedder({ url, model: "m", timeoutMs: 50 }).embed(["x"]),
      /did not answer within 50 ms/,
    );
  });

  test("a bad URL is a configuration error", () => {
    expect(() => createOllamaEmbedder({ url: "not a url", model: "m" })).toThrow("not a valid URL");
    expect(() => createOllamaEmbedder({ url: "ftp://x", model: "m" })).toThrow("http or https");
  });
});

describe("Ollama chat (fake Ollama)", () => {
  const messages = [
    { role: "system" as const, content: "Answer from the memories." },
    { role: "user" as const, content: "Where is the key?" },
  ];

  test("posts {model, messages, stream: true} to /api/chat and yields the streamed text in order", async () => {
    handler = () => chatStream(["The key ", "is under ", "the mat."]);
    const chat = createOllamaChat({ url, model: "llama3.2" });
    expect(chat.id).toBe("ollama/llama3.2");
    expect(await collect(chat.chat(messages))).toEqual(["The key ", "is under ", "the mat."]);
    expect(requests).toEqual([{ path: "/api/chat", body: { model: "llama3.2", messages, stream: true } }]);
  });

  test("json: true asks Ollama for format json", async () => {
    handler = () => chatStream(['{"entities":', "[]}"]);
    const chat = createOllamaChat({ url, model: "llama3.2" });
    expect((await collect(chat.chat(messages, { json: true }))).join("")).toBe('{"entities":[]}');
    expect(requests[0]!.body).toEqual({ model: "llama3.2", messages, stream: true, format: "json" });
  });

  test("an error line midway is unavailable, after the text before it", async () => {
    handler = () => chatStream(["one ", "two ", "three"], { errorAfter: 2 });
    const got: string[] = [];
    const run = (async () => {
      for await (const t of createOllamaChat({ url, model: "m" }).chat(messages)) got.push(t);
    })();
    await expectUnavailable(run, /failed while answering: model runner has unexpectedly stopped/);
    expect(got).toEqual(["one ", "two "]);
  });

  test("an HTTP error answer is unavailable with Ollama's reason", async () => {
    handler = () => Response.json({ error: "llama runner process has terminated" }, { status: 500 });
    await expectUnavailable(
      collect(createOllamaChat({ url, model: "m" }).chat(messages)),
      /answered 500 .*terminated/,
    );
  });

  test("a stream that stalls longer than the timeout is unavailable", async () => {
    handler = () => chatStream(["a", "b"], { stallAfter: 1 });
    await expectUnavailable(
      collect(createOllamaChat({ url, model: "m", timeoutMs: 100 }).chat(messages)),
      /stopped answering for 100 ms/,
    );
  });

  test("a stream that ends without done is unavailable", async () => {
    handler = () =>
      new Response(`${JSON.stringify({ message: { role: "assistant", content: "half" }, done: false })}\n`, {
        headers: { "content-type": "application/x-ndjson" },
      });
    await expectUnavailable(
      collect(createOllamaChat({ url, model: "m" }).chat(messages)),
      /ended before it was done/,
    );
  });

  test("aborting the signal stops the request", async () => {
    handler = () => chatStream(["a", "b"], { stallAfter: 1 });
    const ac = new AbortController();
    const got: string[] = [];
    const run = (async () => {
      for await (const t of createOllamaChat({ url, model: "m" }).chat(messages, { signal: ac.signal })) {
        got.push(t);
        ac.abort(new Error("client went away"));
      }
    })();
    const err = await run.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(got).toEqual(["a"]);
    // Either the abort reason, or nothing if the generator had already finished reading.
    if (err !== undefined) expect(String(err)).toMatch(/client went away|abort/i);
  });

  test("Ollama down: not reachable", async () => {
    const down = await closedPortUrl();
    await expectUnavailable(
      collect(createOllamaChat({ url: down, model: "m" }).chat(messages)),
      /not reachable/,
    );
  });
});
