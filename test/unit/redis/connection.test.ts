import { describe, expect, it } from 'vitest';
import { clusterOptions, isClusterUrl, parseRedisUrl } from '../../../src/redis/connection.js';

describe('parseRedisUrl', () => {
  describe('when the URL names a single Redis', () => {
    it('keeps host, port, credentials, db and TLS', () => {
      expect(parseRedisUrl('rediss://app:p%40ss@redis.internal:6380/2')).toEqual({
        cluster: false,
        nodes: [{ host: 'redis.internal', port: 6380 }],
        username: 'app',
        password: 'p@ss',
        tls: true,
        db: 2,
      });
      expect(isClusterUrl('redis://h:1')).toBe(false);
    });
  });

  describe('when the URL names a Redis Cluster', () => {
    it('lists every seed node, default port 6379, with the credentials', () => {
      const url = 'redis+cluster://:s3cret@10.0.0.1:7000,redis-1.svc,[::1]:7002/';
      expect(isClusterUrl(url)).toBe(true);
      expect(parseRedisUrl(url)).toEqual({
        cluster: true,
        nodes: [
          { host: '10.0.0.1', port: 7000 },
          { host: 'redis-1.svc', port: 6379 },
          { host: '::1', port: 7002 },
        ],
        password: 's3cret',
        tls: false,
      });
      expect(parseRedisUrl('REDISS+CLUSTER://a:1').tls).toBe(true);
    });

    it.each([
      ['redis+cluster://a:1,b:0', "bad Redis Cluster node 'b:0'"],
      ['redis+cluster://a:1,,b:2', "bad Redis Cluster node ''"],
      ['redis+cluster://a:1/3', 'takes no database'],
      ['redis+cluster://a:1?x=1', 'takes no database'],
      ['redis+cluster:a:1', 'expected redis+cluster://host:port'],
    ])('rejects %s without echoing a password', (url, message) => {
      expect(() => parseRedisUrl(url)).toThrow(message);
    });
  });

  describe('when the scheme is not Redis', () => {
    it('names the scheme only', () => {
      expect(() => parseRedisUrl('http://:pw@h:1')).toThrow(
        'expected a redis://, rediss:// or redis+cluster:// URL, got http://',
      );
    });
  });
});

describe('clusterOptions', () => {
  const target = parseRedisUrl('redis+cluster://u:pw@a:1');
  it('waits for Redis in workers (BullMQ needs maxRetriesPerRequest null) and reads masters only', () => {
    const opts = clusterOptions(target, 'worker');
    expect(opts.redisOptions).toMatchObject({
      maxRetriesPerRequest: null,
      username: 'u',
      password: 'pw',
    });
    expect(opts.scaleReads).toBe('master');
    expect(opts.enableOfflineQueue).toBe(true);
  });
  it('fails fast on request paths (the webhook answers 503)', () => {
    const opts = clusterOptions(target, 'request');
    expect(opts.enableOfflineQueue).toBe(false);
    expect(opts.redisOptions).toMatchObject({ enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  });
});
