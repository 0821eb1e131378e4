/**
 * Holds the current compiled policy and replaces it without a restart when the file changes or the
 * process gets SIGHUP. A bad new file keeps the old policy (and logs why); the first load throws,
 * so a bad file stops the service at start.
 *
 * Every load whose canonical SHA-256 differs from the previous one (the first load included) is
 * reported to the `onLoad` listeners, which anchor it (a `kind: 'admin'` block with the hash), so
 * an auditor can prove which policy judged which change.
 */
import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { PolicyError } from './errors.js';
import type { CompileOptions, CompiledPolicy } from './evaluate.js';
import { loadPolicy } from './evaluate.js';
import { MAX_POLICY_BYTES } from './schema.js';

export interface PolicyInfo {
  file: string;
  /** SHA-256 (hex) of the policy's canonical JSON (RFC 8785): what gets anchored */
  sha256: string;
  /** SHA-256 (hex) of the file's bytes, to match a file on disk */
  fileSha256: string;
  rules: number;
  /** ISO time of the load */
  loadedAt: string;
  /** the canonical SHA-256 this load replaced (undefined for the first) */
  previous: string | undefined;
}

export type PolicyLoadListener = (info: PolicyInfo, policy: CompiledPolicy) => void | Promise<void>;

export interface PolicyHolderOptions {
  logger: Logger;
  compile?: CompileOptions;
  /** called for the first load and for every reload that changes the policy */
  onLoad?: PolicyLoadListener;
  now?: () => number;
}

export type ReloadResult =
  { ok: true; changed: boolean; info: PolicyInfo } | { ok: false; error: PolicyError };

/** Editors and ConfigMap updates come as bursts of events: wait for the dust to settle. */
export const RELOAD_DEBOUNCE_MS = 200;

/** Reads and compiles a policy file; throws PolicyError (POLICY_FILE_UNREADABLE, …). */
export async function readPolicyFile(
  file: string,
  options?: CompileOptions,
): Promise<{ policy: CompiledPolicy; fileSha256: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new PolicyError(
      'POLICY_FILE_UNREADABLE',
      [
        {
          line: undefined,
          column: undefined,
          path: '',
          message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        },
      ],
      { cause: err },
    );
  }
  if (bytes.length > MAX_POLICY_BYTES) {
    throw new PolicyError('POLICY_INVALID', [
      {
        line: undefined,
        column: undefined,
        path: '',
        message: `file is larger than ${MAX_POLICY_BYTES} bytes`,
      },
    ]);
  }
  const policy = loadPolicy(bytes.toString('utf8'), options);
  return { policy, fileSha256: createHash('sha256').update(bytes).digest('hex') };
}

export class PolicyHolder {
  private policy: CompiledPolicy;
  private meta: PolicyInfo;
  private readonly listeners = new Set<PolicyLoadListener>();
  private readonly logger: Logger;
  private readonly now: () => number;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private readonly onSighup = (): void => {
    this.logger.info('SIGHUP: reloading the policy');
    void this.reload();
  };
  private sighup = false;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly file: string,
    loaded: { policy: CompiledPolicy; fileSha256: string },
    private readonly options: PolicyHolderOptions,
  ) {
    this.logger = options.logger.child({ module: 'policy' });
    this.now = options.now ?? Date.now;
    this.policy = loaded.policy;
    this.meta = this.infoFor(loaded, undefined);
    if (options.onLoad) this.listeners.add(options.onLoad);
  }

  /** Loads the file; throws PolicyError if it is unreadable or invalid (stop the service). */
  static async load(file: string, options: PolicyHolderOptions): Promise<PolicyHolder> {
    const path = resolve(file);
    const holder = new PolicyHolder(path, await readPolicyFile(path, options.compile), options);
    holder.logger.info(
      { file: path, sha256: holder.meta.sha256, rules: holder.meta.rules },
      'policy loaded',
    );
    // At start a failing listener (e.g. the policy block could not be anchored) stops the service.
    await holder.notify(true);
    return holder;
  }

  get current(): CompiledPolicy {
    return this.policy;
  }

  get info(): PolicyInfo {
    return this.meta;
  }

  /** Adds a listener (not called for loads before it was added); returns its remover. */
  onLoad(listener: PolicyLoadListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the file. A bad file keeps the current policy; the error is logged and returned. */
  reload(): Promise<ReloadResult> {
    const run = this.chain.then(() => this.reloadNow());
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Watches the file (its directory, so replace-by-rename and ConfigMap swaps are seen) and SIGHUP. */
  start(opts: { watchFile?: boolean; sighup?: boolean } = {}): void {
    if ((opts.watchFile ?? true) && !this.watcher) {
      const name = basename(this.file);
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, changed) => {
        // Kubernetes swaps a `..data` symlink; editors write temp files then rename.
        if (changed !== null && changed !== name && !changed.startsWith('..')) return;
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.reload(), RELOAD_DEBOUNCE_MS);
        this.debounce.unref();
      });
      this.watcher.on('error', (err) =>
        this.logger.error({ file: this.file, err }, 'policy file watch failed'),
      );
    }
    if ((opts.sighup ?? true) && !this.sighup) {
      process.on('SIGHUP', this.onSighup);
      this.sighup = true;
    }
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.debounce);
    if (this.sighup) process.off('SIGHUP', this.onSighup);
    this.sighup = false;
  }

  private async reloadNow(): Promise<ReloadResult> {
    let loaded: { policy: CompiledPolicy; fileSha256: string };
    try {
      loaded = await readPolicyFile(this.file, this.options.compile);
    } catch (err) {
      const error =
        err instanceof PolicyError
          ? err
          : new PolicyError(
              'POLICY_INVALID',
              [{ line: undefined, column: undefined, path: '', message: String(err) }],
              { cause: err },
            );
      this.logger.error(
        { file: this.file, code: error.code, issues: error.issues, kept: this.meta.sha256 },
        'policy reload failed; keeping the current policy',
      );
      return { ok: false, error };
    }
    if (loaded.policy.sha256 === this.meta.sha256) {
      if (loaded.fileSha256 !== this.meta.fileSha256) {
        this.meta = { ...this.meta, fileSha256: loaded.fileSha256 };
      }
      return { ok: true, changed: false, info: this.meta };
    }
    const previous = this.meta.sha256;
    this.policy = loaded.policy;
    this.meta = this.infoFor(loaded, previous);
    this.logger.info(
      { file: this.file, sha256: this.meta.sha256, previous, rules: this.meta.rules },
      'policy reloaded',
    );
    await this.notify(false);
    return { ok: true, changed: true, info: this.meta };
  }

  private async notify(rethrow: boolean): Promise<void> {
    for (const listener of this.listeners) {
      try {
        await listener(this.meta, this.policy);
      } catch (err) {
        if (rethrow) throw err;
        this.logger.error({ err, sha256: this.meta.sha256 }, 'policy load listener failed');
      }
    }
  }

  private infoFor(
    loaded: { policy: CompiledPolicy; fileSha256: string },
    previous: string | undefined,
  ): PolicyInfo {
    return {
      file: this.file,
      sha256: loaded.policy.sha256,
      fileSha256: loaded.fileSha256,
      rules: loaded.policy.ruleCount,
      loadedAt: new Date(this.now()).toISOString(),
      previous,
    };
  }
}
