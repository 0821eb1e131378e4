/**
 * How to start a worker thread on one of our modules, whether we run compiled (dist/*.js) or from
 * the TypeScript sources (tsx, vitest), where the thread must load the module through tsx.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** `sibling` is the module's file name without extension, resolved next to `importMetaUrl`. */
export function workerEntry(importMetaUrl: string, sibling: string): URL {
  if (importMetaUrl.endsWith('.js')) return new URL(`./${sibling}.js`, importMetaUrl);
  const entry = new URL(`./${sibling}.ts`, importMetaUrl).href;
  // The ESM build of tsx's API (require.resolve finds its CommonJS twin next to it).
  const tsx = pathToFileURL(
    createRequire(importMetaUrl)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}
