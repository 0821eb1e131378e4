// Copies the ledger's Lua scripts next to the compiled JavaScript (tsc does not copy them).
import { cpSync, mkdirSync } from 'node:fs';

mkdirSync('dist/src/ledger/lua', { recursive: true });
cpSync('src/ledger/lua', 'dist/src/ledger/lua', {
  recursive: true,
  filter: (src) => !src.endsWith('.ts'),
});
