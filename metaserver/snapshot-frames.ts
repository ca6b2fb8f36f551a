// A copyset snapshot on the wire: chunks of length-prefixed (key, value) frames.
const CHUNK_BYTES = 256 * 1024;

export async function* encodeFrames(entries: AsyncIterable<[string, string]>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const [key, value] of entries) {
    const k = Buffer.from(key, 'utf8');
    const v = Buffer.from(value, 'utf8');
    const head = Buffer.alloc(8);
    head.writeUInt32BE(k.length, 0);
    head.writeUInt32BE(v.length, 4);
    parts.push(head, k, v);
    size += 8 + k.length + v.length;
    if (size >= CHUNK_BYTES) {
      yield Buffer.concat(parts);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts);
}

/** Yields the pairs of each chunk; frames may span chunk boundaries. */
export async function* decodeFrames(chunks: AsyncIterable<Buffer>): AsyncGenerator<Array<[string, string]>> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of chunks) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const pairs: Array<[string, string]> = [];
    let at = 0;
    while (pending.length - at >= 8) {
      const kl = pending.readUInt32BE(at);
      const vl = pending.readUInt32BE(at + 4);
      if (pending.length - at < 8 + kl + vl) break;
      const key = pending.toString('utf8', at + 8, at + 8 + kl);
      const value = pending.toString('utf8', at + 8 + kl, at + 8 + kl + vl);
      pairs.push([key, value]);
      at += 8 + kl + vl;
    }
    pending = pending.subarray(at);
    if (pairs.length) yield pairs;
  }
  if (pending.length) throw new Error(`snapshot ends inside a frame (${pending.length} bytes left)`);
}
