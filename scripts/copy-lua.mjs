// Copies the Lua scripts next to the compiled JavaScript (tsc does not copy them).
import { cpSync, mkdirSync } from 'node:fs';

for (const dir of ['src/ledger/lua', 'src/policy/lua', 'src/dedupe/lua', 'src/vault/lua']) {
  mkdirSync(`dist/${dir}`, { recursive: true });
  cpSync(dir, `dist/${dir}`, { recursive: true, filter: (src) => !src.endsWith('.ts') });
}
