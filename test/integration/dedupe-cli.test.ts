import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDedupe } from '../../src/dedupe/cli.js';
import { buildProgram } from '../../src/cli.js';
import { testRedisUrl } from '../helpers/redis.js';
import { generateSynthetic, writeSynthetic } from '../../bench/dedupe-synth.js';

// The project's own synthetic generator (typos, nicknames, swapped names, namesakes, colleagues
// on one switchboard), not the FEBRL files: those live outside the repository (the FEBRL figures
// are in docs/benchmarks.md).
let dir: string;
let CSV: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dedupe-cli-'));
  CSV = join(dir, 'people.csv');
  writeSynthetic(generateSynthetic(1000, 7), CSV);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('crm-ledger dedupe', () => {
  describe('when run on 1,000 synthetic records with their truth file', () => {
    it('prints the F1 line and writes the judged pairs', async () => {
      const out = join(dir, 'pairs.csv');
      const lines: string[] = [];
      const report = await runDedupe(
        [CSV],
        {
          id: 'id',
          truth: `${CSV}.truth.csv`,
          shuffle: '1',
          out,
          object: 'contact',
          redisUrl: testRedisUrl(),
        },
        (line) => lines.push(line),
      );
      expect(lines[0]).toMatch(
        /^records: 1000 .*records\/s: \d+ .*p99 ms: [\d.]+ .*median candidates: \d+/,
      );
      expect(lines.find((l) => l.startsWith('blocking recall:'))).toMatch(/\(\d+\/\d+ true pairs/);
      const f1Line = lines.find((l) => l.startsWith('precision:'));
      expect(f1Line).toMatch(/F1: 0\.9\d{3}/);
      expect(report.truth!.precision).toBeGreaterThanOrEqual(0.9);
      expect(report.truth!.f1).toBeGreaterThanOrEqual(0.9);
      const csv = (await readFile(out, 'utf8')).trim().split('\n');
      expect(csv[0]).toBe('left_id,right_id,score');
      expect(csv.length - 1).toBe(report.pairs);
      const [left, right, score] = csv[1]!.split(',');
      expect(left).toMatch(/^s\d+$/);
      expect(right).toMatch(/^s\d+$/);
      expect(Number(score)).toBeGreaterThanOrEqual(0.9);
    });
  });

  describe('when given a bad option', () => {
    it('rejects an unknown canonical field in --map', async () => {
      await expect(
        runDedupe(
          [CSV],
          { id: 'id', map: 'shoe_size=x', object: 'contact', redisUrl: testRedisUrl() },
          () => {},
        ),
      ).rejects.toThrow(/--map/);
    });
    it('rejects a missing id column', async () => {
      await expect(
        runDedupe([CSV], { id: 'nope', object: 'contact', redisUrl: testRedisUrl() }, () => {}),
      ).rejects.toThrow(/no column "nope"/);
    });
    it('is registered on the crm-ledger program', () => {
      const cmd = buildProgram().commands.find((c) => c.name() === 'dedupe');
      expect(cmd?.options.map((o) => o.long)).toEqual(
        expect.arrayContaining([
          '--id',
          '--map',
          '--threshold',
          '--out',
          '--truth',
          '--shuffle',
          '--redis-url',
        ]),
      );
    });
  });
});
