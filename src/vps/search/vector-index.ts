/**
 * Exact vector search without pgvector: each user's current vectors, decoded once and kept in
 * memory as one contiguous Float32Array, scanned in full for every query (the exact answer, no
 * index to tune). Decoding 100,000 stored vectors takes about a second and scanning them 40-100 ms
 * (bench/RESULTS.md), so the decoded vectors stay cached per user and follow the user's change
 * feed: every write and every new vector takes a new seq, so a search reads the user's seq (one
 * indexed lookup) and, when it moved, applies only the memories changed since.
 *
 * Users' caches are evicted least recently used first beyond a memory budget.
 */
import { type Kysely, sql } from "kysely";
import { currentVectors } from "../db/memories.ts";
import type { VpsTables } from "../db/schema.ts";
import { bytesToVector, LITTLE_ENDIAN } from "../db/vector-bytes.ts";
import type { ScoredId } from "./vector.ts";

export interface VectorIndexOptions {
  /** Most bytes of decoded vectors kept across users (512 MiB by default). */
  maxBytes?: number;
}

/** The decoded vectors of one user, as of the user's feed position `seq`. */
class UserVectors {
  seq = -1;
  dims = 0;
  n = 0;
  ids: string[] = [];
  private readonly rows = new Map<string, number>();
  data = new Float32Array(0);

  get bytes(): number {
    return this.data.byteLength + this.ids.length * 64;
  }

  /** Stores a vector given as little-endian float32 bytes (copied straight into the matrix). */
  set(id: string, bytes: Uint8Array): void {
    const len = bytes.byteLength / 4;
    if (!Number.isInteger(len) || len === 0) return;
    if (this.dims === 0) this.dims = len;
    if (len !== this.dims) return;
    let row = this.rows.get(id);
    if (row === undefined) {
      row = this.n++;
      if ((row + 1) * this.dims > this.data.length) {
        const grown = new Float32Array(Math.max(1024, this.n * 2) * this.dims);
        grown.set(this.data);
        this.data = grown;
      }
      this.ids[row] = id;
      this.rows.set(id, row);
    }
    if (LITTLE_ENDIAN) new Uint8Array(this.data.buffer, row * this.dims * 4, this.dims * 4).set(bytes);
    else this.data.set(bytesToVector(bytes), row * this.dims);
  }

  /** Removes a memory by moving the last row into its place. */
  remove(id: string): void {
    const row = this.rows.get(id);
    if (row === undefined) return;
    const last = --this.n;
    this.rows.delete(id);
    if (row !== last) {
      const lastId = this.ids[last]!;
      this.data.copyWithin(row * this.dims, last * this.dims, (last + 1) * this.dims);
      this.ids[row] = lastId;
      this.rows.set(lastId, row);
    }
    this.ids.length = last;
  }

  /** The `k` rows most similar to `q` (dot product; cosine for unit vectors), best first;
   * only scores above `minScore`, and only memories in `allow` when given. */
  topK(q: Float32Array, k: number, minScore: number, allow?: ReadonlySet<string>): ScoredId[] {
    const d = this.dims;
    if (q.length !== d || k <= 0) return [];
    const data = this.data;
    const bestRow: number[] = [];
    const bestScore: number[] = [];
    let floor = minScore;
    for (let r = 0, off = 0; r < this.n; r++, off += d) {
      if (allow && !allow.has(this.ids[r]!)) continue;
      let dot = 0;
      let i = 0;
      for (; i + 3 < d; i += 4)
        dot +=
          data[off + i]! * q[i]! +
          data[off + i + 1]! * q[i + 1]! +
          data[off + i + 2]! * q[i + 2]! +
          data[off + i + 3]! * q[i + 3]!;
      for (; i < d; i++) dot += data[off + i]! * q[i]!;
      if (dot <= floor) continue;
      // Insert into the sorted buffer (best first).
      let j = bestScore.length;
      while (j > 0 && bestScore[j - 1]! < dot) j--;
      bestScore.splice(j, 0, dot);
      bestRow.splice(j, 0, r);
      if (bestScore.length > k) {
        bestScore.pop();
        bestRow.pop();
      }
      if (bestScore.length === k) floor = Math.max(minScore, bestScore[k - 1]!);
    }
    return bestRow.map((r, i) => ({ id: this.ids[r]!, score: bestScore[i]! }));
  }
}

export type VectorIndex = ReturnType<typeof createVectorIndex>;

/** The in-memory vector cache of one VPS instance. */
export function createVectorIndex(db: Kysely<VpsTables>, model: string, options: VectorIndexOptions = {}) {
  const maxBytes = options.maxBytes ?? 512 * 1024 * 1024;
  const users = new Map<string, UserVectors>();
  const inFlight = new Map<string, Promise<UserVectors>>();

  async function userSeq(userId: string): Promise<number> {
    const r = await sql<{ seq: number | string }>`select seq from users where id = ${userId}`.execute(db);
    return Number(r.rows[0]?.seq ?? 0);
  }

  async function refresh(userId: string): Promise<UserVectors> {
    const seq = await userSeq(userId);
    let u = users.get(userId);
    if (u && u.seq === seq) return u;
    if (!u || u.seq < 0) {
      u = new UserVectors();
      // Read the seq first: everything up to it is committed, so the rows read after include it.
      // Two scans of the user's rows matched here, never a join: a join's plan goes quadratic when
      // the tables' statistics are stale (right after a backlog was embedded).
      const live = await sql<{ id: string; hash: string }>`
        select id, md5(content) as hash from memories where user_id = ${userId} and not deleted`.execute(db);
      const hashes = new Map(live.rows.map((r) => [r.id, r.hash]));
      const vecs = await sql<{ memory_id: string; content_hash: string; vector: Uint8Array }>`
        select memory_id, content_hash, vector from embeddings
        where user_id = ${userId} and model = ${model}`.execute(db);
      for (const r of vecs.rows) if (hashes.get(r.memory_id) === r.content_hash) u.set(r.memory_id, r.vector);
    } else {
      const changed = await sql<{ id: string; deleted: boolean; hash: string }>`
        select id, deleted, md5(content) as hash from memories
        where user_id = ${userId} and seq > ${u.seq}`.execute(db);
      const vectors = await currentVectors(
        db,
        userId,
        model,
        changed.rows.filter((r) => !r.deleted),
      );
      for (const r of changed.rows) {
        const v = vectors.get(r.id);
        if (v) u.set(r.id, v);
        else u.remove(r.id);
      }
    }
    u.seq = seq;
    users.delete(userId);
    users.set(userId, u);
    evict(userId);
    return u;
  }

  function evict(keep: string): void {
    let total = 0;
    for (const u of users.values()) total += u.bytes;
    for (const [id, u] of users) {
      if (total <= maxBytes) break;
      if (id === keep) continue;
      users.delete(id);
      total -= u.bytes;
    }
  }

  /** The user's vectors, brought up to date (one refresh at a time per user). */
  function current(userId: string): Promise<UserVectors> {
    let p = inFlight.get(userId);
    if (!p) {
      p = refresh(userId).finally(() => inFlight.delete(userId));
      inFlight.set(userId, p);
    }
    return p;
  }

  return {
    /** The `k` memories of the user most similar to `query`, best first (scores above 0); only
     * those in `allow` when given (a filter's memories). */
    async search(
      userId: string,
      query: readonly number[],
      k: number,
      allow?: ReadonlySet<string>,
    ): Promise<ScoredId[]> {
      return (await current(userId)).topK(Float32Array.from(query), k, 0, allow);
    },
    /** Loads the user's vectors ahead of their first semantic search (in the background). */
    warm(userId: string): void {
      if (users.has(userId)) return;
      current(userId).catch(() => {});
    },
    /** Forgets every cached user (tests, a change of embedder). */
    clear(): void {
      users.clear();
    },
    /** Vectors and bytes held, for metrics. */
    stats(): { users: number; vectors: number; bytes: number } {
      let vectors = 0;
      let bytes = 0;
      for (const u of users.values()) {
        vectors += u.n;
        bytes += u.bytes;
      }
      return { users: users.size, vectors, bytes };
    },
  };
}
