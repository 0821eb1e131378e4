import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

/** loadConfig must throw ConfigError('CONFIG_INVALID'); return its message lines. */
function issuesFor(env: NodeJS.ProcessEnv): string[] {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const err = caught as ConfigError;
  expect(err.code).toBe('CONFIG_INVALID');
  return err.message
    .split('\n')
    .slice(1)
    .map((line) => line.trim());
}

const TOKEN_A = 'a'.repeat(32);
const TOKEN_B = 'b'.repeat(32);

describe('loadConfig', () => {
  describe('when the environment is empty', () => {
    it('returns the documented defaults', () => {
      expect(loadConfig({})).toEqual({
        http: { port: 3000, host: '127.0.0.1' },
        redis: {},
        mode: 'development',
        dataDir: './data',
        admin: {},
        hubspot: { apiUrl: 'https://api.hubapi.com', acceptV1: false },
        salesforce: { orgIds: [], apiVersion: '61.0', cdc: true },
        sandbox: 'auto',
        ledger: {
          origin: 'crm-ledger.local',
          keyFile: 'data/ledger.key',
          checkpointMinIntervalMs: 0,
          maxChangeBytes: 65_536,
        },
        vault: { keyFile: 'data/vault-master.json', auditorValues: false },
        anchor: { batchSize: 128, batchWaitMs: 20, lockMs: 30_000 },
        dedupe: { enabled: true, threshold: 0.9 },
        reconcile: { everyMs: 900_000, settleMs: 60_000 },
        verifyEveryMs: 900_000,
        fullVerifyEveryMs: 86_400_000,
        witnesses: { keys: '', quorum: 1, local: 'auto' },
        alerts: {},
        logLevel: 'info',
      });
    });

    it('omits absent optional keys instead of setting them to undefined', () => {
      const config = loadConfig({});
      expect('publicUrl' in config.http).toBe(false);
      expect('url' in config.redis).toBe(false);
      expect('policyFile' in config).toBe(false);
      expect(Object.keys(config.admin)).toEqual([]);
    });
  });

  describe('when every variable is set to a valid value', () => {
    it('maps each one into its slice', () => {
      const config = loadConfig({
        CRM_LEDGER_PORT: '8080',
        CRM_LEDGER_HOST: '0.0.0.0',
        CRM_LEDGER_REDIS_URL: 'rediss://:pw@redis.internal:6380/2',
        CRM_LEDGER_MODE: 'Production',
        CRM_LEDGER_HEALTH_PORT: '9464',
        CRM_LEDGER_DATA_DIR: '/var/lib/crm-ledger',
        CRM_LEDGER_PUBLIC_URL: 'https://ledger.example.com/',
        CRM_LEDGER_ADMIN_TOKEN: TOKEN_A,
        CRM_LEDGER_AUDITOR_TOKEN: TOKEN_B,
        CRM_LEDGER_OPERATOR_TOKEN: 'c'.repeat(16),
        CRM_LEDGER_WITNESS_TOKEN: 'w'.repeat(16),
        CRM_LEDGER_SESSION_SECRET: 'k'.repeat(64),
        CRM_LEDGER_HUBSPOT_CLIENT_SECRET: 'hs-secret',
        CRM_LEDGER_HUBSPOT_ACCEPT_V1: 'on',
        CRM_LEDGER_HUBSPOT_ACCESS_TOKEN: 'hs-token',
        CRM_LEDGER_HUBSPOT_API_URL: 'http://127.0.0.1:4010',
        CRM_LEDGER_SALESFORCE_ORG_IDS: '00D5e000000AbCd',
        CRM_LEDGER_SALESFORCE_INSTANCE_URL: 'https://acme.my.salesforce.com',
        CRM_LEDGER_SALESFORCE_ACCESS_TOKEN: 'sf-token',
        CRM_LEDGER_HUBSPOT_PORTAL_ID: '62515',
        CRM_LEDGER_HUBSPOT_APP_ID: '54321',
        CRM_LEDGER_HUBSPOT_CLIENT_ID: 'hs-client',
        CRM_LEDGER_HUBSPOT_REFRESH_TOKEN: 'hs-refresh',
        CRM_LEDGER_SALESFORCE_CLIENT_ID: 'sf-client',
        CRM_LEDGER_SALESFORCE_CLIENT_SECRET: 'sf-secret',
        CRM_LEDGER_SALESFORCE_REFRESH_TOKEN: 'sf-refresh',
        CRM_LEDGER_SALESFORCE_LOGIN_URL: 'https://test.salesforce.com',
        CRM_LEDGER_SALESFORCE_API_VERSION: '60.0',
        CRM_LEDGER_SALESFORCE_CDC: 'off',
        CRM_LEDGER_SANDBOX: 'off',
        CRM_LEDGER_TOKENS_FILE: '/etc/crm-ledger/tokens.json',
        CRM_LEDGER_POLICY_FILE: './policy.yaml',
        CRM_LEDGER_DEDUPE: 'off',
        CRM_LEDGER_WITNESS_KEYS: 'w.example+01020304+AAAA',
        CRM_LEDGER_RECONCILE_EVERY_MS: '60000',
        CRM_LEDGER_RECONCILE_SETTLE_MS: '5000',
        CRM_LEDGER_VERIFY_EVERY_MS: '0',
        CRM_LEDGER_FULL_VERIFY_EVERY_MS: '3600000',
        CRM_LEDGER_WITNESS_QUORUM: '2',
        CRM_LEDGER_LOCAL_WITNESS: 'off',
        CRM_LEDGER_DEDUPE_THRESHOLD: '0.8',
        CRM_LEDGER_DEDUPE_DEFAULT_COUNTRY: 'AU',
        CRM_LEDGER_ALERT_WEBHOOK_URL: 'https://alerts.example.com/hook',
        CRM_LEDGER_ALERT_WEBHOOK_SECRET: 'alert-secret',
        CRM_LEDGER_LOG_LEVEL: 'DEBUG',
        CRM_LEDGER_LEDGER_ORIGIN: 'ledger.example.com/acme',
        CRM_LEDGER_LEDGER_KEY_FILE: '/run/secrets/ledger.key',
        CRM_LEDGER_CHECKPOINT_MIN_INTERVAL_MS: '5000',
        CRM_LEDGER_ANCHOR_BATCH_SIZE: '1000',
        CRM_LEDGER_ANCHOR_BATCH_WAIT_MS: '0',
        CRM_LEDGER_MAX_CHANGE_BYTES: '131072',
        CRM_LEDGER_VAULT_KEY_FILE: '/run/secrets/vault-master.json',
        CRM_LEDGER_VAULT_AUDITOR_VALUES: 'on',
      });
      expect(config).toEqual({
        http: {
          port: 8080,
          host: '0.0.0.0',
          publicUrl: 'https://ledger.example.com',
          healthPort: 9464,
        },
        redis: { url: 'rediss://:pw@redis.internal:6380/2' },
        mode: 'production',
        dataDir: '/var/lib/crm-ledger',
        admin: {
          adminToken: TOKEN_A,
          auditorToken: TOKEN_B,
          operatorToken: 'c'.repeat(16),
          witnessToken: 'w'.repeat(16),
          tokensFile: '/etc/crm-ledger/tokens.json',
          sessionSecret: 'k'.repeat(64),
        },
        hubspot: {
          clientSecret: 'hs-secret',
          acceptV1: true,
          accessToken: 'hs-token',
          apiUrl: 'http://127.0.0.1:4010',
          portalId: '62515',
          appId: '54321',
          clientId: 'hs-client',
          refreshToken: 'hs-refresh',
        },
        salesforce: {
          orgIds: ['00D5e000000AbCd'],
          instanceUrl: 'https://acme.my.salesforce.com',
          accessToken: 'sf-token',
          clientId: 'sf-client',
          clientSecret: 'sf-secret',
          refreshToken: 'sf-refresh',
          loginUrl: 'https://test.salesforce.com',
          apiVersion: '60.0',
          cdc: false,
        },
        sandbox: 'off',
        ledger: {
          origin: 'ledger.example.com/acme',
          keyFile: '/run/secrets/ledger.key',
          checkpointMinIntervalMs: 5000,
          maxChangeBytes: 131_072,
        },
        vault: { keyFile: '/run/secrets/vault-master.json', auditorValues: true },
        anchor: { batchSize: 1000, batchWaitMs: 0, lockMs: 30_000 },
        policyFile: './policy.yaml',
        dedupe: { enabled: false, threshold: 0.8, defaultCountry: 'AU' },
        reconcile: { everyMs: 60_000, settleMs: 5_000 },
        verifyEveryMs: 0,
        fullVerifyEveryMs: 3_600_000,
        witnesses: { keys: 'w.example+01020304+AAAA', quorum: 2, local: 'off' },
        alerts: { webhookUrl: 'https://alerts.example.com/hook', webhookSecret: 'alert-secret' },
        logLevel: 'debug',
      });
    });
  });

  describe('when only the data directory is set', () => {
    it('puts the ledger key file under it', () => {
      expect(loadConfig({ CRM_LEDGER_DATA_DIR: '/srv/ledger' }).ledger.keyFile).toBe(
        '/srv/ledger/ledger.key',
      );
      expect(loadConfig({ CRM_LEDGER_DATA_DIR: '/srv/ledger' }).vault.keyFile).toBe(
        '/srv/ledger/vault-master.json',
      );
    });
  });

  describe('when a value is blank or padded', () => {
    it('treats blank as unset and trims the rest', () => {
      const config = loadConfig({ CRM_LEDGER_REDIS_URL: '  ', CRM_LEDGER_PORT: ' 4000 ' });
      expect(config.redis).toEqual({});
      expect(config.http.port).toBe(4000);
    });
  });

  describe('when unrelated variables are present', () => {
    it('ignores them', () => {
      expect(loadConfig({ PATH: '/usr/bin', PORT: 'not-ours' }).http.port).toBe(3000);
    });
  });

  describe('when a value is invalid', () => {
    // Salesforce settings need an org allow-list, or that cross-field rule fires as well.
    const orgs = { CRM_LEDGER_SALESFORCE_ORG_IDS: '00D5e000000AbCd' };
    it.each([
      ['CRM_LEDGER_PORT', 'abc', "CRM_LEDGER_PORT: expected an integer 0-65535, got 'abc'"],
      ['CRM_LEDGER_PORT', '-1', "CRM_LEDGER_PORT: expected an integer 0-65535, got '-1'"],
      ['CRM_LEDGER_PORT', '65536', "CRM_LEDGER_PORT: expected an integer 0-65535, got '65536'"],
      ['CRM_LEDGER_PORT', '80.5', "CRM_LEDGER_PORT: expected an integer 0-65535, got '80.5'"],
      ['CRM_LEDGER_REDIS_URL', 'localhost:6379', 'CRM_LEDGER_REDIS_URL: expected a redis://'],
      [
        'CRM_LEDGER_REDIS_URL',
        'http://h:1',
        "CRM_LEDGER_REDIS_URL: expected a redis:// or rediss:// URL (or redis+cluster://host:port,…), got scheme 'http://'",
      ],
      [
        'CRM_LEDGER_REDIS_URL',
        'redis+cluster://a:7000,b:99999',
        "CRM_LEDGER_REDIS_URL: bad Redis Cluster node 'b:99999' (expected host:port)",
      ],
      [
        'CRM_LEDGER_REDIS_URL',
        'redis+cluster://a:7000/1',
        'CRM_LEDGER_REDIS_URL: a Redis Cluster URL takes no database',
      ],
      [
        'CRM_LEDGER_MODE',
        'prod',
        "CRM_LEDGER_MODE: expected one of development|production, got 'prod'",
      ],
      [
        'CRM_LEDGER_PUBLIC_URL',
        'ftp://x',
        "CRM_LEDGER_PUBLIC_URL: expected an http:// or https:// URL, got 'ftp://x'",
      ],
      [
        'CRM_LEDGER_PUBLIC_URL',
        'https://x/?a=1',
        'CRM_LEDGER_PUBLIC_URL: expected a base URL without query',
      ],
      [
        'CRM_LEDGER_HUBSPOT_API_URL',
        'api.hubapi.com',
        'CRM_LEDGER_HUBSPOT_API_URL: expected an http:// or https:// URL',
      ],
      [
        'CRM_LEDGER_SALESFORCE_INSTANCE_URL',
        'nope',
        'CRM_LEDGER_SALESFORCE_INSTANCE_URL: expected an http://',
      ],
      [
        'CRM_LEDGER_ADMIN_TOKEN',
        'short',
        'CRM_LEDGER_ADMIN_TOKEN: expected at least 16 characters, got 5',
      ],
      [
        'CRM_LEDGER_AUDITOR_TOKEN',
        'x'.repeat(15),
        'CRM_LEDGER_AUDITOR_TOKEN: expected at least 16 characters',
      ],
      [
        'CRM_LEDGER_OPERATOR_TOKEN',
        'x',
        'CRM_LEDGER_OPERATOR_TOKEN: expected at least 16 characters',
      ],
      [
        'CRM_LEDGER_WITNESS_TOKEN',
        'w'.repeat(15),
        'CRM_LEDGER_WITNESS_TOKEN: expected at least 16 characters',
      ],
      [
        'CRM_LEDGER_HUBSPOT_ACCEPT_V1',
        'yes',
        "CRM_LEDGER_HUBSPOT_ACCEPT_V1: expected one of on|off, got 'yes'",
      ],
      [
        'CRM_LEDGER_SESSION_SECRET',
        's'.repeat(31),
        'CRM_LEDGER_SESSION_SECRET: expected at least 32 bytes (e.g. openssl rand -hex 32), got 31 (value not shown)',
      ],
      [
        'CRM_LEDGER_SALESFORCE_ORG_IDS',
        '00D5e000000AbCd,bogus',
        "CRM_LEDGER_SALESFORCE_ORG_IDS: expected a comma-separated list of 15- or 18-character Salesforce org ids, got 'bogus'",
      ],
      [
        'CRM_LEDGER_LOG_LEVEL',
        'verbose',
        "CRM_LEDGER_LOG_LEVEL: expected one of fatal|error|warn|info|debug|trace|silent, got 'verbose'",
      ],
      [
        'CRM_LEDGER_LEDGER_ORIGIN',
        'my ledger',
        'CRM_LEDGER_LEDGER_ORIGIN: expected a checkpoint origin',
      ],
      ['CRM_LEDGER_LEDGER_ORIGIN', 'a+b', 'CRM_LEDGER_LEDGER_ORIGIN: expected a checkpoint origin'],
      [
        'CRM_LEDGER_LEDGER_ORIGIN',
        'https://example.com',
        'CRM_LEDGER_LEDGER_ORIGIN: expected a checkpoint origin',
      ],
      [
        'CRM_LEDGER_CHECKPOINT_MIN_INTERVAL_MS',
        '-1',
        'CRM_LEDGER_CHECKPOINT_MIN_INTERVAL_MS: expected an integer 0-86400000',
      ],
      [
        'CRM_LEDGER_ANCHOR_BATCH_SIZE',
        '0',
        "CRM_LEDGER_ANCHOR_BATCH_SIZE: expected an integer 1-1000, got '0'",
      ],
      [
        'CRM_LEDGER_ANCHOR_BATCH_SIZE',
        '1001',
        "CRM_LEDGER_ANCHOR_BATCH_SIZE: expected an integer 1-1000, got '1001'",
      ],
      [
        'CRM_LEDGER_ANCHOR_BATCH_WAIT_MS',
        'soon',
        'CRM_LEDGER_ANCHOR_BATCH_WAIT_MS: expected an integer 0-60000',
      ],
      [
        'CRM_LEDGER_MAX_CHANGE_BYTES',
        '1e6',
        'CRM_LEDGER_MAX_CHANGE_BYTES: expected an integer 1024-16777216',
      ],
    ])('%s=%j is reported under its name', (name, value, expected) => {
      const issues = issuesFor({ ...orgs, [name]: value });
      expect(issues).toHaveLength(1);
      expect(issues[0]).toContain(expected);
      expect(issues[0]?.startsWith(`${name}:`)).toBe(true);
    });

    it('never echoes a secret value', () => {
      const message = issuesFor({
        CRM_LEDGER_ADMIN_TOKEN: 'hunter2hunter2',
        CRM_LEDGER_REDIS_URL: 'http://:sup3rsecret@redis:6379',
      }).join('\n');
      expect(message).toContain('CRM_LEDGER_ADMIN_TOKEN: expected at least 16 characters');
      expect(message).not.toContain('hunter2');
      expect(message).not.toContain('sup3rsecret');
    });
  });

  describe('when several values are invalid', () => {
    it('reports every issue in one error', () => {
      let caught: unknown;
      try {
        loadConfig({
          CRM_LEDGER_PORT: 'abc',
          CRM_LEDGER_LOG_LEVEL: 'loud',
          CRM_LEDGER_ANCHOR_BATCH_SIZE: '0',
          CRM_LEDGER_SALESFORCE_ACCESS_TOKEN: 'sf-token',
          CRM_LEDGER_SALESFORCE_ORG_IDS: '00D5e000000AbCd',
        });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      const message = (caught as ConfigError).message;
      expect(message).toMatch(/^Invalid configuration \(4 issues\):/);
      for (const name of [
        'CRM_LEDGER_PORT',
        'CRM_LEDGER_LOG_LEVEL',
        'CRM_LEDGER_ANCHOR_BATCH_SIZE',
        'CRM_LEDGER_SALESFORCE_INSTANCE_URL',
      ]) {
        expect(message).toContain(`\n  ${name}: `);
      }
    });
  });

  describe('when SALESFORCE_ACCESS_TOKEN is set without SALESFORCE_INSTANCE_URL', () => {
    it('names the missing instance URL', () => {
      expect(
        issuesFor({
          CRM_LEDGER_SALESFORCE_ACCESS_TOKEN: 'sf-token',
          CRM_LEDGER_SALESFORCE_ORG_IDS: '00D5e000000AbCd',
        }),
      ).toEqual([
        'CRM_LEDGER_SALESFORCE_INSTANCE_URL: required when CRM_LEDGER_SALESFORCE_ACCESS_TOKEN is set (the token is only valid against its own instance)',
      ]);
    });
  });

  describe('when SALESFORCE_INSTANCE_URL is set but invalid and the token is set', () => {
    it('reports the bad URL only, not a missing one', () => {
      const issues = issuesFor({
        CRM_LEDGER_SALESFORCE_ACCESS_TOKEN: 'sf-token',
        CRM_LEDGER_SALESFORCE_INSTANCE_URL: 'acme.my.salesforce.com',
        CRM_LEDGER_SALESFORCE_ORG_IDS: '00D5e000000AbCd',
      });
      expect(issues).toHaveLength(1);
      expect(issues[0]).toMatch(/^CRM_LEDGER_SALESFORCE_INSTANCE_URL: expected an http/);
    });
  });

  describe('when Salesforce is connected without an org allow-list', () => {
    it('names SALESFORCE_ORG_IDS', () => {
      const issues = issuesFor({
        CRM_LEDGER_SALESFORCE_INSTANCE_URL: 'https://acme.my.salesforce.com',
        CRM_LEDGER_SALESFORCE_ACCESS_TOKEN: 'sf-token',
      });
      expect(issues).toHaveLength(1);
      expect(issues[0]).toMatch(/^CRM_LEDGER_SALESFORCE_ORG_IDS: required when Salesforce/);
    });
  });

  describe('when HUBSPOT_ACCESS_TOKEN is set without HUBSPOT_CLIENT_SECRET', () => {
    it('names the missing client secret', () => {
      const issues = issuesFor({ CRM_LEDGER_HUBSPOT_ACCESS_TOKEN: 'hs-token' });
      expect(issues).toHaveLength(1);
      expect(issues[0]).toMatch(/^CRM_LEDGER_HUBSPOT_CLIENT_SECRET: required when/);
    });
  });

  describe('when two role tokens are equal', () => {
    it('names the later one', () => {
      expect(
        issuesFor({ CRM_LEDGER_ADMIN_TOKEN: TOKEN_A, CRM_LEDGER_OPERATOR_TOKEN: TOKEN_A }),
      ).toEqual([
        'CRM_LEDGER_OPERATOR_TOKEN: must differ from CRM_LEDGER_ADMIN_TOKEN (each role needs its own token)',
      ]);
    });

    it('keeps the witness token apart from the operator token', () => {
      expect(
        issuesFor({ CRM_LEDGER_OPERATOR_TOKEN: TOKEN_B, CRM_LEDGER_WITNESS_TOKEN: TOKEN_B }),
      ).toEqual([
        'CRM_LEDGER_WITNESS_TOKEN: must differ from CRM_LEDGER_OPERATOR_TOKEN (each role needs its own token)',
      ]);
    });
  });

  describe('when SALESFORCE_ORG_IDS lists ids', () => {
    it('accepts 15- and 18-character ids, trims, skips empties and drops duplicates', () => {
      const config = loadConfig({
        CRM_LEDGER_SALESFORCE_ORG_IDS: ' 00D5e000000AbCd , 00D5e000000AbCdEAK,,00D5e000000AbCd ',
      });
      expect(config.salesforce.orgIds).toEqual(['00D5e000000AbCd', '00D5e000000AbCdEAK']);
    });

    it.each(['00D5e000000AbC', '00D5e000000AbCdE', '00D5e000000AbCdEAKX', '00D5e000000AbC-'])(
      'rejects %j',
      (id) => {
        const issues = issuesFor({ CRM_LEDGER_SALESFORCE_ORG_IDS: `00D5e000000AbCd,${id}` });
        expect(issues).toHaveLength(1);
        expect(issues[0]).toContain(`got '${id}'`);
      },
    );
  });
});

describe('describeConfig', () => {
  it('lists every variable once, with a description', () => {
    const rows = describeConfig();
    const names = rows.map((row) => row.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('CRM_LEDGER_PORT');
    expect(names).toContain('CRM_LEDGER_MAX_CHANGE_BYTES');
    expect(names.every((name) => name.startsWith('CRM_LEDGER_'))).toBe(true);
    expect(rows.every((row) => row.description.length > 0)).toBe(true);
  });

  it('documents defaults that loadConfig actually applies', () => {
    const byName = new Map(describeConfig().map((row) => [row.name, row.default]));
    const config = loadConfig({});
    expect(byName.get('CRM_LEDGER_PORT')).toBe(String(config.http.port));
    expect(byName.get('CRM_LEDGER_HOST')).toBe(config.http.host);
    expect(byName.get('CRM_LEDGER_LOG_LEVEL')).toBe(config.logLevel);
    expect(byName.get('CRM_LEDGER_LEDGER_ORIGIN')).toBe(config.ledger.origin);
    expect(byName.get('CRM_LEDGER_ANCHOR_BATCH_SIZE')).toBe(String(config.anchor.batchSize));
    expect(byName.get('CRM_LEDGER_ANCHOR_BATCH_WAIT_MS')).toBe(String(config.anchor.batchWaitMs));
    expect(byName.get('CRM_LEDGER_MAX_CHANGE_BYTES')).toBe(String(config.ledger.maxChangeBytes));
    expect(byName.get('CRM_LEDGER_HUBSPOT_API_URL')).toBe(config.hubspot.apiUrl);
  });
});
