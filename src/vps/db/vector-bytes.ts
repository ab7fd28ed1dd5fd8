/**
 * How vectors are stored: `bytea` of little-endian float32 (4 bytes a dimension, 1.5 KB for 384
 * dimensions), and how a stored one is carried on the change feed.
 */

/** Packs a vector as little-endian float32 bytes. */
export function vectorToBytes(v: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i]!, true);
  return bytes;
}

export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Unpacks little-endian float32 bytes; throws on a length that is not a multiple of 4. */
export function bytesToVector(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0)
    throw new Error(`vector bytes must be a multiple of 4, got ${bytes.byteLength}`);
  // Every platform Dionysus builds for is little-endian: one copy, no per-element decoding.
  // (A fresh copy: `Buffer#slice` is a view on a shared pool, so its `.buffer` is not the vector.)
  if (LITTLE_ENDIAN) {
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    return new Float32Array(copy.buffer);
  }
  const out = new Float32Array(bytes.byteLength / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/**
 * A stored vector as the change feed carries it (`Memory.embedding`): numbers rounded to five
 * decimals, which keeps cosine similarities within about 1e-4 and the JSON about half as long.
 */
export function feedVector(bytes: Uint8Array): number[] {
  return Array.from(bytesToVector(bytes), (x) => Math.round(x * 1e5) / 1e5);
}
