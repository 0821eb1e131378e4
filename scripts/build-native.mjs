// Builds the optional native addon (native/, loaded by src/native/addon.ts: verification hashing,
// append field texts and vault sealing) with node-gyp, against the headers of the Node that runs
// this. `npm install` / `npm ci` run it. It never fails the install: without a C compiler, Node's
// headers or with CRM_LEDGER_NATIVE=off, it says why and crm-ledger hashes and seals through
// node:crypto instead (same results, slower).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'native/build/Release/ledger_native.node');
const say = (line) => console.log(`crm-ledger native: ${line}`);

if (process.env.CRM_LEDGER_NATIVE === 'off') {
  say('skipped (CRM_LEDGER_NATIVE=off); crm-ledger uses node:crypto');
  process.exit(0);
}

// npm gives lifecycle scripts its bundled node-gyp; run by hand, look beside npm.
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
].filter(Boolean);
const gyp = candidates.find((path) => existsSync(path));
if (!gyp) {
  say('node-gyp not found; crm-ledger uses node:crypto (npm run build:native to retry)');
  process.exit(0);
}

const args = [gyp, 'rebuild', '--directory', join(root, 'native')];
// Offline machines build against the running Node's own headers when npm names them (nodedir).
if (process.env.npm_config_nodedir) args.push(`--nodedir=${process.env.npm_config_nodedir}`);
const build = spawnSync(process.execPath, args, { encoding: 'utf8' });
if (build.status !== 0) {
  const output = `${build.stdout ?? ''}${build.stderr ?? ''}`.trim().split('\n').slice(-12);
  say(`build failed; crm-ledger uses node:crypto (npm run build:native to retry). node-gyp said:`);
  for (const line of output) console.log(`  ${line}`);
  process.exit(0);
}

// Check it against a known answer before anything relies on it.
try {
  const { leafHashes } = createRequire(import.meta.url)(addon);
  const out = Buffer.alloc(32);
  leafHashes([Buffer.alloc(0)], out);
  // RFC 6962 leaf hash of the empty leaf: SHA-256(0x00).
  const expected = '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d';
  if (out.toString('hex') !== expected) throw new Error(`wrong hash ${out.toString('hex')}`);
  say(`built ${addon}`);
} catch (err) {
  say(`built but unusable (${err.message}); crm-ledger uses node:crypto`);
}
