/**
 * PackedReader against a real redis-server: every reply must hold exactly the bytes ioredis reads,
 * however the socket splits them, and errors and lost connections must fail only the requests
 * they concern.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { connect, testRedisUrl } from '../helpers/redis.js';
import { startProxy } from '../helpers/tcp-proxy.js';
import { PackedReadError, PackedReader } from '../../src/redis/packed-reader.js';
import type { PackedReply } from '../../src/redis/packed-reader.js';
import { startRedisServer } from '../../src/redis/embedded-server.js';
import { createRng } from '../../bench/lib.js';

let redis: Redis;
const prefix = `packed-reader:${randomBytes(6).toString('hex')}`;
const listKey = `${prefix}:list`;
const strKey = `${prefix}:str`;
let elements: Buffer[];

function strings(reply: PackedReply): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < reply.ends.length; i++) {
    out.push(reply.data.subarray(i === 0 ? 0 : reply.ends[i - 1], reply.ends[i]));
  }
  return out;
}

/** Same strings in the same order (Buffer.equals: a deep toEqual of megabytes is slow). */
function expectSame(actual: readonly Buffer[], expected: readonly Buffer[]): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.findIndex((b, i) => !b.equals(expected[i] as Buffer))).toBe(-1);
}

/** Runs `use` with a reader on the test Redis (socket read buffer of `readBufferSize` bytes). */
async function withReader(
  readBufferSize: number,
  use: (reader: PackedReader) => Promise<void>,
): Promise<void> {
  const reader = new PackedReader(testRedisUrl(), { readBufferSize });
  try {
    await use(reader);
  } finally {
    reader.close();
  }
}

beforeAll(async () => {
  redis = connect();
  const rng = createRng(7);
  // Sizes from 0 to ~6 KB, bytes that look like RESP framing (\r\n, $, *) included.
  elements = Array.from({ length: 300 }, (_, i) => {
    const size = i % 50 === 0 ? 0 : Math.floor(rng() * 6000);
    if (size < 7) return Buffer.alloc(size, 0x0d);
    const b = randomBytes(size);
    for (let j = 0; j < size; j += 97) b.set(Buffer.from('\r\n$*-:+'), Math.min(j, size - 7));
    return b;
  });
  await redis.rpush(listKey, ...elements);
  await redis.set(strKey, Buffer.concat(elements.slice(0, 40)));
});
afterAll(async () => {
  await redis.del(listKey, strKey);
  await redis.quit();
});

describe('PackedReader', () => {
  it.each([1, 2, 7, 1500, 256 * 1024])(
    'packs LRANGE and GETRANGE replies byte for byte (socket read buffer of %i bytes)',
    async (readBufferSize) => {
      await withReader(readBufferSize, async (reader) => {
        const [list, range, part] = await reader.read([
          ['LRANGE', listKey, 0, -1],
          ['GETRANGE', strKey, 100, 4099],
          ['LRANGE', listKey, 10, 19],
        ]);
        expect(list?.nil).toBe(false);
        expectSame(strings(list as PackedReply), await redis.lrangeBuffer(listKey, 0, -1));
        expectSame(strings(range as PackedReply), [await redis.getrangeBuffer(strKey, 100, 4099)]);
        expectSame(strings(part as PackedReply), elements.slice(10, 20));
      });
    },
  );

  it('reads empty lists, empty and missing strings, nil, integers and status replies', async () => {
    await withReader(3, async (reader) => {
      const missing = `${prefix}:missing`;
      const [empty, emptyRange, nil, len, pong] = await reader.read([
        ['LRANGE', missing, 0, -1],
        ['GETRANGE', missing, 0, 31],
        ['GET', missing],
        ['LLEN', listKey],
        ['PING'],
      ]);
      expect(empty).toMatchObject({ nil: false });
      expect(empty?.ends.length).toBe(0);
      expectSame(strings(emptyRange as PackedReply), [Buffer.alloc(0)]);
      expect(nil).toMatchObject({ nil: true });
      expectSame(strings(len as PackedReply), [Buffer.from(String(elements.length))]);
      expectSame(strings(pong as PackedReply), [Buffer.from('PONG')]);
    });
  });

  it('keeps concurrent requests apart, each with its own replies in order', async () => {
    await withReader(4096, async (reader) => {
      const reads = Array.from({ length: 40 }, (_, i) =>
        reader.read([
          ['LRANGE', listKey, i, i + 5],
          ['LINDEX', listKey, i],
        ]),
      );
      const replies = await Promise.all(reads);
      replies.forEach(([range, one], i) => {
        expectSame(strings(range as PackedReply), elements.slice(i, i + 6));
        expectSame(strings(one as PackedReply), [elements[i] as Buffer]);
      });
    });
  });

  it('reuses a released reply buffer for a later reply, with the later bytes in it', async () => {
    await withReader(1500, async (reader) => {
      const [first] = await reader.read([['LRANGE', listKey, 0, -1]]);
      const firstBuffer = (first as PackedReply).data.buffer;
      // Not released: a second read gets a buffer of its own.
      const [second] = await reader.read([['LRANGE', listKey, 0, 99]]);
      expect((second as PackedReply).data.buffer).not.toBe(firstBuffer);
      reader.release([first as PackedReply]);
      const [third] = await reader.read([['LRANGE', listKey, 100, -1]]);
      expect((third as PackedReply).data.buffer).toBe(firstBuffer);
      expectSame(strings(third as PackedReply), elements.slice(100));
      expectSame(strings(second as PackedReply), elements.slice(0, 100));
    });
  });

  it('rejects a request with an error reply and stays in step for the next one', async () => {
    await withReader(5, async (reader) => {
      const failed = reader.read([
        ['LRANGE', listKey, 0, 2],
        ['LRANGE', strKey, 0, -1],
        ['GETRANGE', strKey, 0, 9],
      ]);
      await expect(failed).rejects.toMatchObject({
        name: 'PackedReadError',
        code: 'REDIS_REPLY_ERROR',
        message: expect.stringContaining('WRONGTYPE'),
      });
      const [after] = await reader.read([['LRANGE', listKey, 0, 2]]);
      expectSame(strings(after as PackedReply), elements.slice(0, 3));
    });
  });

  it('fails the requests in flight when the connection is lost, and connects again after', async () => {
    const port = Number(new URL(testRedisUrl()).port);
    const proxy = await startProxy(port);
    const reader = new PackedReader(proxy.url);
    try {
      const [first] = await reader.read([['LRANGE', listKey, 0, 0]]);
      expectSame(strings(first as PackedReply), elements.slice(0, 1));
      proxy.dropReplyTo(/LRANGE/);
      const lost = reader.read([['LRANGE', listKey, 0, -1]]);
      await expect(lost).rejects.toMatchObject({ code: 'REDIS_CONNECTION_LOST' });
      await expect(lost).rejects.toBeInstanceOf(PackedReadError);
      const [again] = await reader.read([['LRANGE', listKey, 0, 3]]);
      expectSame(strings(again as PackedReply), elements.slice(0, 4));
      proxy.refuseConnections(true);
      proxy.cutConnections();
      await expect(reader.read([['LRANGE', listKey, 0, 3]])).rejects.toMatchObject({
        code: 'REDIS_CONNECTION_LOST',
      });
    } finally {
      reader.close();
      await proxy.close();
    }
  });

  it('authenticates and selects the database named in the URL', async () => {
    const server = await startRedisServer({ persistence: 'none' });
    const admin = new Redis(server.url);
    try {
      await admin.select(3);
      await admin.rpush('l', 'in-db-3');
      await admin.call('ACL', 'SETUSER', 'auditor', 'on', '>s3cret', '~*', '+@all');
      await admin.config('SET', 'requirepass', 'top-secret');
      const base = `127.0.0.1:${server.port}`;

      const byPassword = new PackedReader(`redis://:top-secret@${base}/3`);
      const byUser = new PackedReader(`redis://auditor:s3cret@${base}/3`);
      const wrong = new PackedReader(`redis://:nope@${base}/3`);
      const noAuth = new PackedReader(`redis://${base}/3`);
      try {
        for (const reader of [byPassword, byUser]) {
          const [list] = await reader.read([['LRANGE', 'l', 0, -1]]);
          expectSame(strings(list as PackedReply), [Buffer.from('in-db-3')]);
        }
        await expect(wrong.read([['LRANGE', 'l', 0, -1]])).rejects.toMatchObject({
          code: 'REDIS_REPLY_ERROR',
        });
        await expect(noAuth.read([['LRANGE', 'l', 0, -1]])).rejects.toMatchObject({
          code: 'REDIS_REPLY_ERROR',
          message: expect.stringContaining('NOAUTH'),
        });
      } finally {
        for (const r of [byPassword, byUser, wrong, noAuth]) r.close();
      }
    } finally {
      admin.disconnect();
      await server.stop();
    }
  });

  it('fails a request Redis leaves unanswered with REDIS_TIMEOUT, and recovers after', async () => {
    const server = await startRedisServer({ persistence: 'none' });
    const admin = new Redis(server.url);
    const reader = new PackedReader(server.url, { timeoutMs: 200 });
    try {
      await admin.rpush('l', 'a', 'b');
      expectSame(strings((await reader.read([['LRANGE', 'l', 0, -1]]))[0] as PackedReply), [
        Buffer.from('a'),
        Buffer.from('b'),
      ]);
      // Idle with nothing asked: the connection is kept (no timeout without a request).
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(((await admin.client('LIST')) as string).split('\n').filter(Boolean)).toHaveLength(2);
      // Redis stops answering (every client paused) for longer than the timeout.
      await admin.call('CLIENT', 'PAUSE', '1000', 'ALL');
      const started = Date.now();
      await expect(reader.read([['LRANGE', 'l', 0, -1]])).rejects.toMatchObject({
        code: 'REDIS_TIMEOUT',
        message: expect.stringContaining('under a request'),
      });
      expect(Date.now() - started).toBeLessThan(900);
      await new Promise((resolve) => setTimeout(resolve, 900));
      const [again] = await reader.read([['LRANGE', 'l', 0, 0]]);
      expectSame(strings(again as PackedReply), [Buffer.from('a')]);
    } finally {
      reader.close();
      admin.disconnect();
      await server.stop();
    }
  });

  it('times out a server that accepts the connection and never answers the AUTH', async () => {
    const accepted: Socket[] = [];
    const silent = createServer((socket) => void accepted.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const reader = new PackedReader(`redis://:pw@127.0.0.1:${port}`, { timeoutMs: 150 });
    try {
      await expect(reader.read([['LRANGE', 'l', 0, -1]])).rejects.toMatchObject({
        code: 'REDIS_TIMEOUT',
        message: expect.stringContaining('while connecting'),
      });
    } finally {
      reader.close();
      for (const socket of accepted) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('takes plain redis:// URLs only', () => {
    expect(PackedReader.supports('redis://127.0.0.1:6380/2')).toBe(true);
    expect(PackedReader.supports('rediss://127.0.0.1:6380')).toBe(false);
    expect(PackedReader.supports('redis+cluster://127.0.0.1:7000,127.0.0.1:7001')).toBe(false);
    expect(PackedReader.supports('http://x')).toBe(false);
    expect(() => new PackedReader('rediss://127.0.0.1:6380')).toThrow(TypeError);
  });
});
