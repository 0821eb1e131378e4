/**
 * ByteArena: bytes carved out of large off-heap buffers that are never written twice.
 *
 * The append path makes a few KB of bytes per block (block bytes, vault entries) that live until
 * Redis has the batch. As V8 heap strings or small Buffers they were copied by every young-gen
 * scavenge while their batch was in flight, and each small `Buffer.from` costs ~15x a write into
 * memory that already exists. Here a slice keeps its 1 MiB buffer alive for as long as it is
 * referenced; a full buffer is replaced, never reused, so a slice handed out is never overwritten.
 *
 * Use: `const buf = arena.reserve(max)`, write at most `max` bytes from `arena.at`, then set
 * `arena.at` to the end of what was written. Synchronous only: nothing may reserve in between.
 */
export const ARENA_BYTES = 1 << 20;

export class ByteArena {
  private buf: Buffer;
  /** first free byte of the current buffer */
  at = 0;

  constructor(private readonly size = ARENA_BYTES) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  /** The current buffer, with at least `max` free bytes from `at` (a fresh one if needed). */
  reserve(max: number): Buffer {
    if (this.at + max > this.buf.length) {
      this.buf = Buffer.allocUnsafeSlow(Math.max(this.size, max));
      this.at = 0;
    }
    return this.buf;
  }

  /** A string's UTF-8 bytes, as a slice of the arena (at most 3 bytes per UTF-16 unit). */
  writeUtf8(text: string): Buffer {
    const buf = this.reserve(3 * text.length);
    const start = this.at;
    const end = start + buf.write(text, start, 'utf8');
    this.at = end;
    return buf.subarray(start, end);
  }
}
