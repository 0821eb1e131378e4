// Copies the ledger's and the dedupe index's Lua scripts next to the compiled JavaScript (tsc does not copy them).
import { cpSync, mkdirSync } from 'node:fs';

mkdirSync('dist/src/ledger/lua', { recursive: true });
cpSync('src/ledger/lua', 'dist/src/ledger/lua', {
  recursive: true,
  filter: (src) => !src.endsWith('.ts'),
});
mkdirSync('dist/src/dedupe/lua', { recursive: true });
cpSync('src/dedupe/lua', 'dist/src/dedupe/lua', { recursive: true });
