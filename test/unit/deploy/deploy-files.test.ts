/**
 * deploy/: the Dockerfile linted (dockerfile-utils, the VS Code Docker language server's
 * validator), the compose file and the Helm chart checked for what production needs. Neither a
 * Docker daemon nor helm can be installed here (no Docker Hub, no helm package or Go toolchain
 * new enough), so the chart's templates are checked structurally and its values against its own
 * values.schema.json (which helm enforces at install); `docker-compose config` runs where present.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { validate, ValidationSeverity } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { describeConfig } from '../../../src/config.js';

const run = promisify(execFile);
const read = (path: string) => readFileSync(path, 'utf8');
const CHART = 'deploy/helm/crm-ledger';

interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  deploy?: { replicas?: number };
  healthcheck?: { disable?: boolean };
  volumes?: string[];
  stop_grace_period?: string;
}

describe('deploy/Dockerfile', () => {
  const text = read('deploy/Dockerfile');

  it('lints clean with every check an error', () => {
    const strict = ValidationSeverity.ERROR;
    const problems = validate(text, {
      deprecatedMaintainer: strict,
      directiveCasing: strict,
      emptyContinuationLine: strict,
      instructionCasing: strict,
      instructionCmdMultiple: strict,
      instructionEntrypointMultiple: strict,
      instructionHealthcheckMultiple: strict,
      instructionJSONInSingleQuotes: strict,
      instructionWorkdirRelative: strict,
    });
    expect(problems.map((p) => `${p.range.start.line + 1}: ${JSON.stringify(p.message)}`)).toEqual(
      [],
    );
    // the linter does find problems (so an empty list above means something)
    expect(validate('FROM node\nEXPOSE abc\n').length).toBeGreaterThan(0);
  });

  it('builds in one stage and runs the compiled output, without dev dependencies, as a non-root user', () => {
    const stages = text.split(/^FROM /m).slice(1);
    expect(stages).toHaveLength(2);
    const [build, runtime] = stages as [string, string];
    expect(build).toMatch(/npm ci\b/);
    expect(build).toMatch(/npm run build/);
    expect(build).toMatch(/npm prune --omit=dev/);
    expect(runtime).not.toMatch(/COPY[^\n]*\bsrc\b/);
    expect(runtime).toMatch(/COPY --from=build \/app\/dist/);
    // The native batch hasher is built by npm ci's install script, so its sources come first.
    expect(build.indexOf('COPY native ./native')).toBeGreaterThan(-1);
    expect(build.indexOf('COPY native ./native')).toBeLessThan(build.indexOf('RUN npm ci'));
    expect(build.indexOf('COPY scripts ./scripts')).toBeLessThan(build.indexOf('RUN npm ci'));
    expect(runtime).toMatch(
      /COPY --from=build \/app\/native\/build\/Release \.\/native\/build\/Release/,
    );
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^ENV[\s\S]*CRM_LEDGER_MODE=production/m);
    expect(runtime).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(runtime).toMatch(/^HEALTHCHECK [\s\S]*\/healthz/m);
    // 64 MB semi-spaces, as npm start runs it (docs/benchmarks.md, issue 3).
    expect(runtime).toMatch(
      /^ENTRYPOINT \["node", "--max-semi-space-size=64", "bin\/crm-ledger.js"\]$/m,
    );
  });
});

describe('deploy/docker-compose.yml', () => {
  const compose = parse(read('deploy/docker-compose.yml'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  const services = compose.services;

  it('runs redis with AOF everysec and noeviction', () => {
    const conf = read('deploy/redis.conf');
    expect(conf).toMatch(/^appendonly yes$/m);
    expect(conf).toMatch(/^appendfsync everysec$/m);
    expect(conf).toMatch(/^maxmemory-policy noeviction$/m);
    expect(services['redis']?.command?.slice(0, 2)).toEqual([
      'redis-server',
      '/usr/local/etc/redis/redis.conf',
    ]);
  });

  it('runs api x2, worker x2, scheduler x1 and one witness, every role in production mode', () => {
    const roleOf = (s: ComposeService | undefined) => s?.command?.slice(0, 3).join(' ');
    expect(roleOf(services['api'])).toBe('serve --role api');
    expect(roleOf(services['worker'])).toBe('serve --role worker');
    expect(roleOf(services['scheduler'])).toBe('serve --role scheduler');
    expect(services['api']?.deploy?.replicas).toBe(2);
    expect(services['worker']?.deploy?.replicas).toBe(2);
    expect(services['scheduler']?.deploy?.replicas ?? 1).toBe(1);
    expect(services['witness']?.command?.join(' ')).toMatch(/bin\/crm-ledger.js witness /);
    for (const name of ['api', 'worker', 'scheduler']) {
      expect(services[name]?.environment?.['CRM_LEDGER_MODE']).toBe('production');
      expect(services[name]?.volumes).toEqual(['keys:/var/lib/crm-ledger/keys:ro']);
    }
    // worker and scheduler serve /healthz for the image's HEALTHCHECK
    expect(services['worker']?.environment?.['CRM_LEDGER_HEALTH_PORT']).toBe('3000');
    expect(services['scheduler']?.environment?.['CRM_LEDGER_HEALTH_PORT']).toBe('3000');
  });

  it('sets only variables the service knows', () => {
    const known = new Set(describeConfig().map((v) => v.name));
    for (const name of ['api', 'worker', 'scheduler']) {
      for (const key of Object.keys(services[name]?.environment ?? {})) {
        expect(known, `${name}: ${key}`).toContain(key);
      }
    }
  });

  // docker-compose (Debian package) validates the file against the Compose schema offline; the
  // Docker CLI's own `compose` plugin is not installed here. CI installs docker-compose.
  const composeBinary = (() => {
    try {
      return execFileSyncOk('docker-compose');
    } catch {
      return false;
    }
  })();
  it.skipIf(!composeBinary)(
    'passes `docker-compose config` (skipped: no docker-compose)',
    async () => {
      const { stdout } = await run('docker-compose', [
        '-f',
        'deploy/docker-compose.yml',
        '--env-file',
        'deploy/.env.example',
        'config',
      ]);
      expect(stdout).toContain('CRM_LEDGER_REDIS_URL: redis://:change-me-long-random@redis:6379');
    },
  );
});

function execFileSyncOk(binary: string): boolean {
  const paths = (process.env['PATH'] ?? '').split(':');
  return paths.some((p) => {
    try {
      return readdirSync(p).includes(binary);
    } catch {
      return false;
    }
  });
}

describe('deploy/helm/crm-ledger', () => {
  const values = parse(read(`${CHART}/values.yaml`)) as Record<string, unknown>;
  const schema = JSON.parse(read(`${CHART}/values.schema.json`)) as object;
  const templates = readdirSync(join(CHART, 'templates')).map((f) => ({
    file: f,
    text: read(join(CHART, 'templates', f)),
  }));

  it('has values that satisfy values.schema.json, which rejects secrets in plain values', () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    const check = ajv.compile(schema);
    expect(check(values), JSON.stringify(check.errors)).toBe(true);
    const bad = structuredClone(values) as { env: Record<string, string> };
    bad.env['CRM_LEDGER_ADMIN_TOKEN'] = 'x'.repeat(32);
    expect(check(bad)).toBe(false);
    const twoSchedulers = structuredClone(values) as { roles: { scheduler: { replicas: number } } };
    twoSchedulers.roles.scheduler.replicas = 2;
    expect(check(twoSchedulers)).toBe(false);
  });

  it('references only values that exist', () => {
    const lookup = (path: string[]) =>
      path.reduce<unknown>(
        (node, key) =>
          node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined,
        values,
      );
    const refs = templates.flatMap(({ file, text }) =>
      [...text.matchAll(/\.Values((?:\.[A-Za-z]+)+)/g)].map((m) => ({ file, path: m[1]! })),
    );
    expect(refs.length).toBeGreaterThan(20);
    for (const { file, path } of refs) {
      expect(lookup(path.slice(1).split('.')), `${file}: .Values${path}`).not.toBeUndefined();
    }
  });

  it('balances every if/range/with/define with an end', () => {
    for (const { file, text } of templates) {
      const opens = text.match(/\{\{-?\s*(if|range|with|define)\b/g)?.length ?? 0;
      const ends = text.match(/\{\{-?\s*end\s*-?\}\}/g)?.length ?? 0;
      expect(ends, file).toBe(opens);
    }
  });

  it('has a Deployment and a PodDisruptionBudget per role, probes, resources and a NetworkPolicy', () => {
    const byName = Object.fromEntries(templates.map((t) => [t.file, t.text]));
    const deployments = byName['deployments.yaml'] ?? '';
    expect(deployments).toMatch(/range \$role, \$spec := \.Values\.roles/);
    expect(deployments).toMatch(/kind: Deployment/);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      expect(deployments).toContain(probe);
    }
    expect(deployments).toMatch(/readinessProbe:\n\s+httpGet: \{ path: \/readyz/);
    expect(deployments).toMatch(/toYaml \$spec\.resources/);
    expect(deployments).toMatch(/value: production/);
    expect(byName['pdb.yaml']).toMatch(/kind: PodDisruptionBudget[\s\S]*toYaml \$spec\.pdb/);
    expect(byName['networkpolicy.yaml']).toMatch(
      /kind: NetworkPolicy[\s\S]*policyTypes: \[Ingress, Egress\]/,
    );
    expect(Object.keys(values['roles'] as object).sort()).toEqual(['api', 'scheduler', 'worker']);
  });

  it('mounts the signing key from a Secret, read-only, for the roles that sign only', () => {
    const deployments = templates.find((t) => t.file === 'deployments.yaml')?.text ?? '';
    const secretSource =
      /\{\{- if ne \$role "api" \}\}[\s\S]*?- secret:\s+name: \{\{ \$root\.Values\.ledgerKey\.existingSecret \}\}[\s\S]*?\{\{- end \}\}/;
    expect(deployments).toMatch(secretSource);
    expect(deployments).toMatch(/mountPath: \/etc\/crm-ledger\/keys\n\s+readOnly: true/);
    expect(deployments).toMatch(/defaultMode: 0400/);
    // tokens and the Redis URL only from Secrets
    expect(deployments).toMatch(
      /secretKeyRef:\s+name: \{\{ \$root\.Values\.redis\.existingSecret \}\}/,
    );
    expect(deployments).toMatch(/envFrom:\s+- secretRef:/);
  });
});
