/**
 * A read-only Redis connection for bulk reads whose replies are bulk strings or arrays of bulk
 * strings (LRANGE, GETRANGE, GET): each reply arrives packed, every string's bytes one after
 * another in a single Buffer with their end offsets beside it. Full verification reads its
 * segments this way (verify-worker.ts).
 *
 * Why not ioredis: its parser (redis-parser) makes one Buffer object per element and hands the
 * socket's chunks to V8 as new external memory, which then triggers young-generation collections.
 * A 1,000,000-block chain is 1,000,000 elements. This reader reads into one reused buffer
 * (`net.connect`'s `onread`), copies each element's bytes once into the reply's buffer, and makes
 * no object per element: `npm run bench -- verify` prints the difference ("read segments").
 *
 * Scope, on purpose small: plain `redis://` URLs (user, password, db), RESP2, commands pipelined
 * on one socket, no reconnection inside a request (a lost connection fails the requests in flight;
 * the next request connects again). Anything else (TLS, Redis Cluster) keeps ioredis:
 * `PackedReader.supports(url)` tells which.
 */
import net from 'node:net';
import { parseRedisUrl, WORKER_COMMAND_TIMEOUT_MS } from './connection.js';

/** One reply: `count` strings, string i being data[i === 0 ? 0 : ends[i-1], ends[i]). */
export interface PackedReply {
  data: Buffer;
  ends: Uint32Array;
  /** a nil reply ($-1 or *-1): no strings */
  nil: boolean;
}

/** Spare reply buffers kept for reuse (PackedReader.release): a few requests' worth. */
const SPARE_BUFFERS = 64;
/** Replies up to this size come from Node's own buffer pool: not worth keeping. */
const MIN_SPARE_BYTES = 4 * 1024;

/**
 * An error reply from Redis (`-ERR …`), the connection failing under a request, or Redis silent
 * for `timeoutMs` while a request waits (the connection is then closed; the next read reconnects).
 */
export class PackedReadError extends Error {
  readonly code:
    'REDIS_REPLY_ERROR' | 'REDIS_CONNECTION_LOST' | 'REDIS_UNEXPECTED_REPLY' | 'REDIS_TIMEOUT';
  constructor(code: PackedReadError['code'], message: string) {
    super(message);
    this.name = 'PackedReadError';
    this.code = code;
  }
}

export type Arg = string | number | Uint8Array;

export interface PackedReaderOptions {
  /** bytes of the reused socket read buffer (default 256 KiB; tests make it tiny) */
  readBufferSize?: number;
  /**
   * How long Redis may stay silent (no byte received) while a request waits, or while connecting,
   * before the request fails with REDIS_TIMEOUT (default WORKER_COMMAND_TIMEOUT_MS, as the
   * service's workers' ioredis connections). A long reply that keeps arriving never times out.
   */
  timeoutMs?: number;
}

interface Request {
  expected: number;
  replies: PackedReply[];
  /** the first error reply, returned after the request's other replies are read */
  error?: PackedReadError;
  resolve: (replies: PackedReply[]) => void;
  reject: (err: Error) => void;
}

const enum State {
  Type,
  Number,
  Text,
  Bulk,
  BulkEnd,
}

const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);

/** RESP2 request bytes of `commands`, pipelined. */
function encodeCommands(commands: readonly (readonly Arg[])[]): Buffer {
  const parts: Buffer[] = [];
  for (const command of commands) {
    parts.push(Buffer.from(`*${command.length}\r\n`, 'latin1'));
    for (const arg of command) {
      const bytes =
        arg instanceof Uint8Array
          ? Buffer.from(arg.buffer, arg.byteOffset, arg.length)
          : Buffer.from(String(arg), 'utf8');
      parts.push(
        Buffer.from(`$${bytes.length}\r\n`, 'latin1'),
        bytes,
        Buffer.from('\r\n', 'latin1'),
      );
    }
  }
  return Buffer.concat(parts);
}

export class PackedReader {
  private readonly host: string;
  private readonly port: number;
  private readonly hello: Arg[][];
  private readonly readBufferSize: number;
  private readonly timeoutMs: number;
  private socket: net.Socket | undefined;
  private connected: Promise<void> | undefined;
  private readonly queue: Request[] = [];
  private closed = false;
  /** released reply buffers, reused for later replies (no new external memory per reply) */
  private readonly spare: Buffer[] = [];
  /** the whole buffer behind each reply's `data` */
  private readonly arenas = new WeakMap<PackedReply, Buffer>();

  // Parser state: it resumes wherever the previous chunk stopped.
  private state = State.Type;
  private type = 0;
  private number = 0;
  private negative = false;
  private text = '';
  /** the reply being read, and how many of its strings are still to come */
  private reply: { data: Buffer; ends: Uint32Array; count: number } | undefined;
  private left = 0;
  /** bytes of the current bulk string still to copy, and where they go */
  private bulkLeft = 0;
  private bulkAt = 0;
  private crlfLeft = 0;

  /** Whether `url` is one this reader can open (a plain `redis://` URL). */
  static supports(url: string): boolean {
    try {
      const target = parseRedisUrl(url);
      return !target.cluster && !target.tls;
    } catch {
      return false;
    }
  }

  /** A reader for `url` if it supports it (see supports), else undefined. */
  static forUrl(url: string, options: PackedReaderOptions = {}): PackedReader | undefined {
    return PackedReader.supports(url) ? new PackedReader(url, options) : undefined;
  }

  constructor(url: string, options: PackedReaderOptions = {}) {
    const target = parseRedisUrl(url);
    const node = target.nodes[0];
    if (target.cluster || target.tls || !node) {
      throw new TypeError('PackedReader takes a plain redis:// URL (see PackedReader.supports)');
    }
    this.host = node.host.replace(/^\[(.*)\]$/, '$1');
    this.port = node.port;
    this.hello = [];
    if (target.password !== undefined) {
      this.hello.push(
        target.username ? ['AUTH', target.username, target.password] : ['AUTH', target.password],
      );
    }
    if (target.db !== undefined && target.db !== 0) this.hello.push(['SELECT', target.db]);
    this.readBufferSize = options.readBufferSize ?? 256 * 1024;
    this.timeoutMs = options.timeoutMs ?? WORKER_COMMAND_TIMEOUT_MS;
  }

  /**
   * Sends `commands` in one write and resolves with one reply per command, in order. An error
   * reply rejects the whole request with PackedReadError (REDIS_REPLY_ERROR) once all of its
   * replies have been read, so the connection stays in step.
   */
  async read(commands: readonly (readonly Arg[])[]): Promise<PackedReply[]> {
    if (this.closed) throw new PackedReadError('REDIS_CONNECTION_LOST', 'the reader is closed');
    if (commands.length === 0) return [];
    const socket = await this.connect();
    if (this.socket !== socket) {
      // Lost between connecting and now: nothing would ever answer on that socket.
      throw new PackedReadError('REDIS_CONNECTION_LOST', 'connection to Redis lost');
    }
    return new Promise<PackedReply[]>((resolve, reject) => {
      this.queue.push({ expected: commands.length, replies: [], resolve, reject });
      socket.setTimeout(this.timeoutMs);
      socket.write(encodeCommands(commands));
    });
  }

  /**
   * Gives `replies`' buffers back for reuse by later replies: the caller must not touch their
   * `data` again. Optional; it spares the garbage collector the external memory of a new buffer
   * per reply (a verification segment is ~1.6 MB).
   */
  release(replies: readonly PackedReply[]): void {
    for (const reply of replies) {
      const arena = this.arenas.get(reply);
      this.arenas.delete(reply);
      if (arena) this.keep(arena);
    }
  }

  private keep(buffer: Buffer): void {
    if (buffer.length >= MIN_SPARE_BYTES && this.spare.length < SPARE_BUFFERS) {
      this.spare.push(buffer);
    }
  }

  /** A buffer of at least `size` bytes: a spare one if one is big enough. */
  private buffer(size: number): Buffer {
    if (size >= MIN_SPARE_BYTES) {
      // The smallest spare that fits: a segment's large buffer stays for the next segment.
      let best = -1;
      for (let i = 0; i < this.spare.length; i++) {
        const length = (this.spare[i] as Buffer).length;
        if (length >= size && (best < 0 || length < (this.spare[best] as Buffer).length)) best = i;
      }
      if (best >= 0) return this.spare.splice(best, 1)[0] as Buffer;
    }
    return Buffer.allocUnsafe(size);
  }

  close(): void {
    this.closed = true;
    this.socket?.destroy();
    this.fail(new PackedReadError('REDIS_CONNECTION_LOST', 'the reader was closed'));
  }

  private connect(): Promise<net.Socket> {
    if (this.socket && this.connected) {
      const socket = this.socket;
      return this.connected.then(() => socket);
    }
    const buffer = Buffer.allocUnsafe(this.readBufferSize);
    const socket = net.connect({
      host: this.host,
      port: this.port,
      onread: {
        buffer,
        callback: (n: number, chunk: Uint8Array) => {
          if (this.socket === socket) this.feed(chunk as Buffer, n);
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    this.socket = socket;
    this.resetParser();
    let connecting = true;
    let rejectConnect: (err: Error) => void = () => undefined;
    const lost = (err?: PackedReadError | Error) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.connected = undefined;
      socket.destroy();
      const error =
        err instanceof PackedReadError
          ? err
          : new PackedReadError(
              'REDIS_CONNECTION_LOST',
              `connection to Redis lost${err ? `: ${err.message}` : ''}`,
            );
      rejectConnect(error);
      this.fail(error);
    };
    socket.on('error', lost);
    socket.on('close', () => lost());
    // The idle timer runs only while connecting or while a request waits for its replies (read
    // arms it, deliver disarms it once nothing waits): a 'timeout' always means Redis went silent.
    socket.setTimeout(this.timeoutMs);
    socket.on('timeout', () => {
      lost(
        new PackedReadError(
          'REDIS_TIMEOUT',
          `Redis sent nothing for ${this.timeoutMs} ms ${connecting ? 'while connecting' : 'under a request'}`,
        ),
      );
    });
    this.connected = new Promise<void>((resolve, reject) => {
      rejectConnect = reject;
      socket.once('connect', resolve);
      socket.once('error', reject);
    }).then(async () => {
      if (this.hello.length > 0) {
        await new Promise<PackedReply[]>((resolve, reject) => {
          this.queue.unshift({ expected: this.hello.length, replies: [], resolve, reject });
          socket.write(encodeCommands(this.hello));
        });
      }
      connecting = false;
      if (this.queue.length === 0) socket.setTimeout(0);
    });
    // The caller sees the failure; this copy only keeps it from being reported as unhandled.
    this.connected.catch((err: Error) => lost(err));
    return this.connected.then(() => socket);
  }

  private fail(err: Error): void {
    const pending = this.queue.splice(0);
    for (const request of pending) request.reject(err);
    this.resetParser();
  }

  private resetParser(): void {
    this.state = State.Type;
    this.reply = undefined;
    this.left = 0;
  }

  private feed(b: Buffer, n: number): void {
    let i = 0;
    const socket = this.socket;
    // unexpected() drops the connection: the rest of the chunk is not read.
    while (i < n && this.socket === socket) {
      switch (this.state) {
        case State.Type: {
          this.type = b[i++] as number;
          if (
            this.type === 0x2a /* * */ ||
            this.type === 0x24 /* $ */ ||
            this.type === 0x3a /* : */
          ) {
            this.state = State.Number;
            this.number = 0;
            this.negative = false;
          } else {
            this.state = State.Text;
            this.text = '';
          }
          break;
        }
        case State.Number: {
          while (i < n) {
            const c = b[i++] as number;
            if (c >= 0x30 && c <= 0x39) this.number = this.number * 10 + (c - 0x30);
            else if (c === 0x2d) this.negative = true;
            else if (c === LF) {
              this.onNumber(this.negative ? -this.number : this.number);
              break;
            } else if (c !== CR) {
              this.unexpected(`byte ${c} in a length`);
              return;
            }
          }
          break;
        }
        case State.Text: {
          const lf = b.indexOf(LF, i);
          const stop = lf < 0 || lf >= n ? n : lf;
          this.text += b.toString('latin1', i, stop);
          i = stop;
          if (stop < n) {
            i += 1;
            this.onText(this.text.endsWith('\r') ? this.text.slice(0, -1) : this.text);
          }
          break;
        }
        case State.Bulk: {
          const take = Math.min(this.bulkLeft, n - i);
          const reply = this.reply as NonNullable<PackedReader['reply']>;
          b.copy(reply.data, this.bulkAt, i, i + take);
          this.bulkAt += take;
          this.bulkLeft -= take;
          i += take;
          if (this.bulkLeft === 0) {
            this.state = State.BulkEnd;
            this.crlfLeft = 2;
          }
          break;
        }
        case State.BulkEnd: {
          const take = Math.min(this.crlfLeft, n - i);
          this.crlfLeft -= take;
          i += take;
          if (this.crlfLeft === 0) {
            const reply = this.reply as NonNullable<PackedReader['reply']>;
            reply.ends[reply.count++] = this.bulkAt;
            this.state = State.Type;
            this.elementDone();
          }
          break;
        }
      }
    }
  }

  private onNumber(value: number): void {
    this.state = State.Type;
    if (this.type === 0x2a) {
      if (this.reply) return this.unexpected('a nested array');
      if (value <= 0)
        return this.deliver({ data: EMPTY, ends: new Uint32Array(0), nil: value < 0 });
      this.reply = {
        data: this.buffer(value * 2048),
        ends: new Uint32Array(value),
        count: 0,
      };
      this.left = value;
      return;
    }
    if (this.type === 0x3a) {
      // An integer reply: kept as its decimal text, a string of its own.
      return this.onText(String(value), true);
    }
    // A bulk string: alone, or the next element of the array being read.
    if (!this.reply) {
      if (value < 0) return this.deliver({ data: EMPTY, ends: new Uint32Array(0), nil: true });
      this.reply = { data: this.buffer(value), ends: new Uint32Array(1), count: 0 };
      this.left = 1;
    } else if (value < 0) {
      return this.unexpected('a nil element in an array');
    }
    const reply = this.reply;
    const at = reply.count === 0 ? 0 : (reply.ends[reply.count - 1] as number);
    if (at + value > reply.data.length) {
      const grown = this.buffer(Math.max(2 * reply.data.length, at + value));
      reply.data.copy(grown, 0, 0, at);
      this.keep(reply.data);
      reply.data = grown;
    }
    this.bulkAt = at;
    this.bulkLeft = value;
    this.state = value === 0 ? State.BulkEnd : State.Bulk;
    this.crlfLeft = 2;
  }

  private onText(text: string, integer = false): void {
    this.state = State.Type;
    if (this.type === 0x2d /* - */) {
      if (this.reply) return this.unexpected('an error inside an array');
      return this.deliver({ data: EMPTY, ends: new Uint32Array(0), nil: true }, text);
    }
    if (this.reply) return this.unexpected('a status or integer inside an array');
    if (!integer && this.type !== 0x2b /* + */) return this.unexpected(`reply type ${this.type}`);
    const data = Buffer.from(text, 'latin1');
    return this.deliver({ data, ends: Uint32Array.of(data.length), nil: false });
  }

  private elementDone(): void {
    this.left -= 1;
    if (this.left > 0) return;
    const reply = this.reply as NonNullable<PackedReader['reply']>;
    this.reply = undefined;
    const used = reply.count === 0 ? 0 : (reply.ends[reply.count - 1] as number);
    const packed: PackedReply = {
      data: reply.data.subarray(0, used),
      ends: reply.ends,
      nil: false,
    };
    this.arenas.set(packed, reply.data);
    this.deliver(packed);
  }

  private deliver(reply: PackedReply, error?: string): void {
    const request = this.queue[0];
    if (!request) return this.unexpected('a reply nobody asked for');
    if (error !== undefined && !request.error) {
      request.error = new PackedReadError('REDIS_REPLY_ERROR', error);
    }
    request.replies.push(reply);
    if (request.replies.length < request.expected) return;
    this.queue.shift();
    if (this.queue.length === 0) this.socket?.setTimeout(0);
    if (request.error) request.reject(request.error);
    else request.resolve(request.replies);
  }

  /** A reply this reader cannot follow: the stream is out of step, so the connection goes. */
  private unexpected(what: string): void {
    const socket = this.socket;
    this.socket = undefined;
    this.connected = undefined;
    socket?.destroy();
    this.fail(
      new PackedReadError('REDIS_UNEXPECTED_REPLY', `unexpected reply from Redis: ${what}`),
    );
  }
}
