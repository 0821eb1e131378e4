/**
 * CPU profile of one bench scenario, for whoever optimises the ledger: `npx tsx bench/profile.ts
 * <scenario> [blocks]`. Starts its own private redis-server like the benches, sets the scenario up,
 * and profiles only the measured section (node:inspector, 100 µs sampling), then prints Node's
 * self time grouped by area (JCS, hashing, zod, ioredis, Ed25519, GC, …), the top functions by
 * self time, and the inclusive time of the ledger's main steps. Redis's own CPU is reported from
 * INFO cpu around the same section. Writes nothing unless --save is given (then
 * bench/.profiles/<scenario>.cpuprofile, for Chrome DevTools).
 *
 * Scenarios:
 *   append        Ledger.append, batch 128, window 8 (default 64,000 blocks)
 *   append-b1     Ledger.append, batch 1, sequential (default 1,000 blocks)
 *   verify        Ledger.verify(tenant), full (default chain of 100,000 blocks)
 *   incremental   verify({from}) of the last 1% of that chain
 *   proof         1,000 inclusion proofs generated from Redis
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { Redis } from 'ioredis';
import type { AnchorRequest } from '../src/ledger/block.js';
import { assembleProof, inclusionProofRefs } from '../src/ledger/merkle.js';
import { startRedisServer } from '../src/redis/embedded-server.js';
import { StaticKeyWrapper } from '../src/vault/key-wrapper.js';
import { RecordVault } from '../src/vault/vault.js';
import { contactChange, createTestLedger } from '../test/helpers/ledger.js';
import { benchTenant, buildChain } from './chain.js';
import { createRng, measureUsage, out, runWindow } from './lib.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Area of a frame, by file and function: what the brief asks to split time into. */
function areaOf(f: CallFrame): string {
  const url = f.url;
  const fn = f.functionName;
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle (waiting for Redis)';
  if (fn === '(program)') return 'V8/native (program)';
  if (url.includes('/src/ledger/canonical.ts')) return 'JCS canonicalize';
  if (url.includes('/src/ledger/hash.ts')) return 'hash.ts (hashing glue)';
  if (url.includes('@noble/curves')) return 'Ed25519 (@noble/curves, checkpoints)';
  if (url.includes('@noble/hashes')) return '@noble/hashes';
  if (url.includes('/zod/')) return 'zod validation';
  if (url.includes('/ioredis/') || url.includes('redis-parser') || url.includes('/denque/')) {
    return 'ioredis (encode/parse)';
  }
  if (url.includes('/src/ledger/')) return `ledger: ${url.slice(url.lastIndexOf('/') + 1)}`;
  if (url.includes('/test/helpers/')) return 'bench inputs (contactChange)';
  if (url.includes('/bench/')) return 'bench harness';
  if (url.startsWith('node:') || url.includes('internal/')) {
    if (url.includes('crypto')) return 'node:crypto (JS side)';
    if (url.includes('buffer')) return 'node Buffer';
    return 'node internals';
  }
  if (url === '') {
    if (fn === 'parse') return 'JSON.parse (native)';
    if (fn === 'stringify') return 'JSON.stringify (native)';
    if (fn === 'hash' || fn === 'digest' || fn === 'update') return 'SHA-256 native';
    return `native: ${fn || '(anonymous)'}`;
  }
  return `other: ${url.slice(url.lastIndexOf('/') + 1)}`;
}

const INCLUSIVE = [
  'prepare',
  'prepareChange',
  'safeParse',
  'buildBlock',
  'commitment',
  'canonicalize',
  'leafHash',
  'randomBytes',
  'appendLeaves',
  'readRecordHeads',
  'append',
  'signLatest',
  'openCheckpoint',
  'signCheckpoint',
  'verify',
  'verifySegment',
  'checkEarlierRecords',
  'provenBlockHash',
  'readRecord',
  'checkUpperTree',
  'readNodes',
  'assembleProof',
];

function summarise(profile: CpuProfile, wallS: number): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id) as ProfileNode;
    const f = node.callFrame;
    areas.set(areaOf(f), (areas.get(areaOf(f)) ?? 0) + us);
    const name = `${f.functionName || '(anonymous)'} ${f.url.slice(f.url.lastIndexOf('/') + 1)}:${f.lineNumber + 1}`;
    fns.set(name, (fns.get(name) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const fn = (byId.get(at) as ProfileNode).callFrame.functionName;
      if (INCLUSIVE.includes(fn) && !seen.has(fn)) {
        seen.add(fn);
        incl.set(fn, (incl.get(fn) ?? 0) + us);
      }
    }
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  out(`profiled ${(total / 1e6).toFixed(2)} s of samples over ${wallS.toFixed(2)} s wall`);
  out('\nNode self time by area:');
  for (const [k, v] of [...areas].sort((a, b) => b[1] - a[1])) {
    out(`  ${pct(v)} ${ms(v)}  ${k}`);
  }
  out('\ntop 25 functions by self time:');
  for (const [k, v] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    out(`  ${pct(v)} ${ms(v)}  ${k}`);
  }
  out('\ninclusive time of main steps (a function counted once per sample):');
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1])) out(`  ${pct(v)} ${ms(v)}  ${k}`);
}

async function main(): Promise<void> {
  const scenario = process.argv[2] ?? 'append';
  const count = process.argv[3] && /^\d+$/.test(process.argv[3]) ? Number(process.argv[3]) : 0;
  const save = process.argv.includes('--save');
  const server = await startRedisServer({ persistence: 'none' });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  const admin = new Redis(server.url, { maxRetriesPerRequest: null });
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  const profiled = async (fn: () => Promise<unknown>): Promise<void> => {
    await session.post('Profiler.start');
    const { usage } = await measureUsage(admin, fn);
    const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
    out(
      `${scenario}: wall ${usage.wallS.toFixed(2)} s, Node CPU ${usage.nodeCpuS.toFixed(2)} s, ` +
        `Redis CPU ${usage.redisCpuS.toFixed(2)} s (scripts ${(usage.scriptUsec / 1e6).toFixed(2)} s)`,
    );
    summarise(profile, usage.wallS);
    if (save) {
      const dir = new URL('./.profiles/', import.meta.url);
      mkdirSync(dir, { recursive: true });
      writeFileSync(new URL(`${scenario}.cpuprofile`, dir), JSON.stringify(profile));
    }
  };
  try {
    if (scenario === 'append' || scenario === 'append-b1') {
      const b1 = scenario === 'append-b1';
      const batch = b1 ? 1 : 128;
      const window = b1 ? 1 : 8;
      const blocks = count || (b1 ? 1_000 : 64_000);
      // With the vault, as main.ts runs it: entries sealed under per-record data keys.
      const vault = new RecordVault(redis, new StaticKeyWrapper([randomBytes(32)]));
      const ledger = createTestLedger(redis, undefined, { vault });
      const tenant = benchTenant('profile');
      const rng = createRng(5);
      // Changes are made as each batch is sent (as append.bench.ts does), from a pool of
      // templates: holding every change of the run in memory would profile the garbage collector.
      const templates = Array.from({ length: 256 }, () => contactChange(tenant, 'c0'));
      let made = 0;
      const make = (): AnchorRequest[] =>
        Array.from({ length: batch }, () => {
          const t = templates[made % templates.length] as AnchorRequest;
          made += 1;
          return {
            event: {
              ...t.event,
              eventId: `profile-${made}`,
              recordId: `c${Math.floor(rng() * 10_000)}`,
            },
          };
        });
      await runWindow(16, window, () => ledger.append(tenant, make()));
      await profiled(() =>
        runWindow(Math.ceil(blocks / batch), window, () => ledger.append(tenant, make())),
      );
    } else if (scenario === 'verify' || scenario === 'incremental' || scenario === 'proof') {
      const fx = await buildChain(redis, admin, count || 100_000, 8);
      if (scenario === 'verify') {
        await profiled(() => fx.ledger.verify(fx.tenant));
      } else if (scenario === 'incremental') {
        await profiled(() => fx.ledger.verify(fx.tenant, { from: fx.state99 }));
      } else {
        const rng = createRng(9);
        await profiled(async () => {
          for (let i = 0; i < 1000; i++) {
            const plan = inclusionProofRefs(Math.floor(rng() * fx.size), fx.size);
            const nodes = await fx.store.readNodes(fx.tenant, plan.flat());
            const table = new Map(plan.flat().map((r, j) => [`${r.level}/${r.index}`, nodes[j]]));
            assembleProof(plan, (r) => table.get(`${r.level}/${r.index}`) as Uint8Array);
          }
        });
      }
    } else {
      throw new Error(`unknown scenario ${scenario}`);
    }
  } finally {
    session.disconnect();
    await Promise.allSettled([redis.quit(), admin.quit()]);
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
