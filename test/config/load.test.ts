/**
 * Configuration (config/load.ts, config/schema.ts): defaults alone validate and are frozen; a file,
 * LF_ environment variables and flags override in that order; errors are coded and name the field;
 * every leaf of the schema has a default and a description.
 */
import t from 'tap';
import { writeFileSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, configLeaves, envNameFor } from '../../config/load.js';
import { ConfigSchema } from '../../config/schema.js';
import { LianfangError } from '../../gateway/errors.js';

function leafValue(obj: unknown, path: readonly string[]): unknown {
  let node = obj as Record<string, unknown> | undefined;
  for (const k of path) node = node?.[k] as Record<string, unknown> | undefined;
  return node;
}

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lf-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeJson(dir: string, name: string, content: string): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

/** Run fn and return the LianfangError it throws (fails the test when it throws anything else). */
function lfErrorOf(t: Tap, fn: () => unknown): LianfangError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof LianfangError) return err;
    t.fail(`threw something else: ${String(err)}`);
    return undefined;
  }
  t.fail('did not throw');
  return undefined;
}
type Tap = { fail(msg: string): unknown };

t.test('every leaf of the schema has a default and a description', async (t) => {
  const leaves = configLeaves();
  t.ok(leaves.length >= 15, `${leaves.length} leaves found (the walk reaches the nested objects)`);
  t.ok(leaves.some((l) => l.path.join('.') === 'escalation.ackDeadlineMs'), 'a nested leaf is listed');
  for (const leaf of leaves) {
    const s = leaf.schema as { default?: unknown; description?: unknown };
    t.not(s.default, undefined, `${leaf.path.join('.')} has a default`);
    t.type(s.description, 'string', `${leaf.path.join('.')} has a description`);
    if (typeof s.description === 'string') t.ok(s.description.trim().length > 0, `${leaf.path.join('.')}: description is not empty`);
  }
  // Names of the environment variables: derived from the path, and unique.
  t.equal(envNameFor(['escalation', 'ackDeadlineMs']), 'LF_ESCALATION_ACK_DEADLINE_MS');
  t.equal(envNameFor(['mqtt', 'port']), 'LF_MQTT_PORT');
  t.equal(envNameFor(['dataDir']), 'LF_DATA_DIR');
  const names = leaves.map((l) => envNameFor(l.path));
  t.equal(new Set(names).size, names.length, 'every leaf has its own LF_ variable');
});

t.test('the defaults alone validate, equal the schema defaults, and are frozen', async (t) => {
  const config = loadConfig({ env: {} });
  for (const leaf of configLeaves()) {
    t.same(leafValue(config, leaf.path), (leaf.schema as { default?: unknown }).default, `${leaf.path.join('.')} = its default`);
  }
  t.ok(Object.isFrozen(config), 'top level frozen');
  for (const key of Object.keys(config) as (keyof typeof config)[]) {
    if (typeof config[key] === 'object') t.ok(Object.isFrozen(config[key]), `${key} frozen`);
  }
  // ES modules run in strict mode: assigning to a frozen property throws.
  t.throws(() => {
    (config.escalation as { ackDeadlineMs: number }).ackDeadlineMs = 1;
  }, TypeError);
  t.throws(() => {
    (config as { dataDir: string }).dataDir = '/elsewhere';
  }, TypeError);
  t.throws(() => {
    (config as unknown as Record<string, unknown>).extra = 1;
  }, TypeError);
  t.equal(config.escalation.ackDeadlineMs, (ConfigSchema.properties.escalation.properties.ackDeadlineMs as { default: number }).default, 'unchanged');
});

t.test('each load is independent (freezing one does not touch the schema or the next)', async (t) => {
  const a = loadConfig({ env: { LF_ESCALATION_ACK_DEADLINE_MS: '500' } });
  const b = loadConfig({ env: { LF_ESCALATION_ACK_DEADLINE_MS: '700' } });
  const c = loadConfig({ env: {} });
  t.equal(a.escalation.ackDeadlineMs, 500);
  t.equal(b.escalation.ackDeadlineMs, 700);
  t.equal(c.escalation.ackDeadlineMs, 30_000);
  t.not(a.escalation, b.escalation, 'separate objects');
  t.notOk(Object.isFrozen(ConfigSchema.properties.escalation), 'the schema itself is not frozen');
});

t.test('LF_ environment variables override the defaults', async (t) => {
  const config = loadConfig({
    env: {
      LF_ESCALATION_ACK_DEADLINE_MS: '500',
      LF_MQTT_PORT: '0',
      LF_LOG_LEVEL: 'debug',
      LF_DATA_DIR: '/var/lib/lianfang',
      LF_ESCALATION_RING_SIZE: '4',
      UNRELATED: 'x',
    },
  });
  t.equal(config.escalation.ackDeadlineMs, 500);
  t.equal(config.mqtt.port, 0, 'port 0 (falsy) is kept');
  t.equal(config.log.level, 'debug');
  t.equal(config.dataDir, '/var/lib/lianfang');
  t.equal(config.escalation.ringSize, 4);
  t.equal(config.escalation.maxRings, 3, 'siblings keep their defaults');
  t.equal(config.mqtt.wsPort, 8083, 'siblings keep their defaults');

  // Every leaf can be set through its variable: a round trip with a value other than the default.
  for (const leaf of configLeaves()) {
    const s = leaf.schema as { type?: string; default?: unknown; minimum?: number; anyOf?: { const: string }[] };
    let value: unknown;
    if (s.type === 'integer') value = (s.default as number) === (s.minimum ?? 0) ? (s.minimum ?? 0) + 1 : (s.minimum ?? 0);
    else if (s.anyOf) value = s.anyOf.find((x) => x.const !== s.default)!.const;
    else if (leaf.path.join('.') === 'gatewayId') value = 'gw-test-1';
    else if (leaf.path.join('.') === 'timeZone') value = 'UTC';
    else if (s.type === 'array') value = ['10.0.0.0/8', '::1']; // comma-separated in the environment
    else if (s.type === 'boolean') value = !s.default;
    else value = `${String(s.default)}-x`;
    const name = envNameFor(leaf.path);
    const loaded = loadConfig({ env: { [name]: String(value) } });
    t.strictSame(leafValue(loaded, leaf.path), value, `${name}=${String(value)}`);
  }
});

t.test('a non-number in an integer variable is LF_ERR_CONFIG_INVALID naming the variable', async (t) => {
  for (const [name, raw] of [
    ['LF_ESCALATION_ACK_DEADLINE_MS', 'soon'],
    ['LF_MQTT_PORT', 'abc'],
    ['LF_MQTT_PORT', ''],
    ['LF_MQTT_PORT', '   '],
    ['LF_ESCALATION_RING_SIZE', 'NaN'],
    ['LF_ESCALATION_RING_SIZE', 'Infinity'],
  ]) {
    const err = lfErrorOf(t, () => loadConfig({ env: { [name]: raw } }));
    t.equal(err?.code, 'LF_ERR_CONFIG_INVALID', `${name}=${JSON.stringify(raw)}`);
    t.match(err?.message, name, 'the message names the variable');
    t.type(err?.remedy, 'string');
  }
  // A number outside the field's range: refused by the schema, naming the field.
  for (const [name, raw, field] of [
    ['LF_MQTT_PORT', '70000', 'mqtt.port'],
    ['LF_MQTT_PORT', '1.5', 'mqtt.port'],
    ['LF_ESCALATION_ACK_DEADLINE_MS', '0', 'escalation.ackDeadlineMs'],
    ['LF_ESCALATION_MAX_RINGS', '-1', 'escalation.maxRings'],
  ]) {
    const err = lfErrorOf(t, () => loadConfig({ env: { [name]: raw } }));
    t.equal(err?.code, 'LF_ERR_CONFIG_INVALID', `${name}=${raw}`);
    t.match(err?.message, field, `the message names ${field}`);
  }
  const err = lfErrorOf(t, () => loadConfig({ env: { LF_LOG_LEVEL: 'loud' } }));
  t.equal(err?.code, 'LF_ERR_CONFIG_INVALID', 'an unknown log level');
  t.match(err?.message, 'log.level');
});

t.test('--config file: values read, unknown fields refused, unreadable files coded', async (t) => {
  const dir = tempDir(t);
  const good = writeJson(dir, 'good.json', JSON.stringify({ dataDir: '/srv/lf', escalation: { ringSize: 5 }, mqtt: { port: 2883 } }));
  const config = loadConfig({ file: good, env: {} });
  t.equal(config.dataDir, '/srv/lf');
  t.equal(config.escalation.ringSize, 5);
  t.equal(config.escalation.maxRings, 3, 'unset fields beside a set one keep their defaults');
  t.equal(config.mqtt.port, 2883);
  t.equal(config.http.port, 8080, 'a section the file does not mention gets its defaults');

  for (const [name, content, field] of [
    ['unknown-top.json', JSON.stringify({ dataDirectory: '/x' }), ''],
    ['unknown-nested.json', JSON.stringify({ mqtt: { prot: 1883 } }), 'mqtt'],
    ['unknown-deep.json', JSON.stringify({ escalation: { ackDeadline: 5 } }), 'escalation'],
    ['wrong-type.json', JSON.stringify({ mqtt: { port: '1883' } }), 'mqtt.port'],
  ]) {
    const err = lfErrorOf(t, () => loadConfig({ file: writeJson(dir, name, content), env: {} }));
    t.equal(err?.code, 'LF_ERR_CONFIG_INVALID', name);
    if (field) t.match(err?.message, field, `${name}: names ${field}`);
  }

  const missing = join(dir, 'does-not-exist.json');
  let err = lfErrorOf(t, () => loadConfig({ file: missing, env: {} }));
  t.equal(err?.code, 'LF_ERR_CONFIG_FILE', 'a missing file');
  t.match(err?.message, missing, 'the message names the file');
  err = lfErrorOf(t, () => loadConfig({ file: dir, env: {} }));
  t.equal(err?.code, 'LF_ERR_CONFIG_FILE', 'a directory');
  err = lfErrorOf(t, () => loadConfig({ file: writeJson(dir, 'bad.json', '{"mqtt": {'), env: {} }));
  t.equal(err?.code, 'LF_ERR_CONFIG_FILE', 'invalid JSON');
  for (const top of ['[]', '42', 'null', '"text"']) {
    err = lfErrorOf(t, () => loadConfig({ file: writeJson(dir, 'top.json', top), env: {} }));
    t.equal(err?.code, 'LF_ERR_CONFIG_FILE', `top level ${top}`);
  }
});

t.test('precedence: defaults < file < environment < flags', async (t) => {
  const dir = tempDir(t);
  const file = writeJson(dir, 'c.json', JSON.stringify({ mqtt: { port: 1001, wsPort: 1002 }, http: { port: 1003 }, escalation: { ringSize: 7 } }));
  const config = loadConfig({
    file,
    env: { LF_MQTT_PORT: '2001', LF_HTTP_PORT: '2003' },
    overrides: { mqtt: { port: 3001 } },
  });
  t.equal(config.mqtt.port, 3001, 'flag beats environment and file');
  t.equal(config.http.port, 2003, 'environment beats file');
  t.equal(config.mqtt.wsPort, 1002, 'file beats default');
  t.equal(config.escalation.ringSize, 7, 'file beats default');
  t.equal(config.escalation.maxRings, 3, 'default where nobody says otherwise');

  // A flag that was not given (undefined) does not wipe out the environment.
  const c2 = loadConfig({ env: { LF_MQTT_PORT: '2001' }, overrides: { mqtt: { port: undefined }, dataDir: undefined } });
  t.equal(c2.mqtt.port, 2001);
  t.equal(c2.dataDir, './data');
  // Flags are validated like everything else.
  const err = lfErrorOf(t, () => loadConfig({ env: {}, overrides: { mqtt: { port: 99999 } } }));
  t.equal(err?.code, 'LF_ERR_CONFIG_INVALID');
  t.match(err?.message, 'mqtt.port');
});

t.test('README.md "Configuration" documents exactly the fields of the schema, with their defaults', async (t) => {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Error codes'));
  const rows = [...section.matchAll(/^\| `([A-Za-z.]+)` \| `(LF_[A-Z_]+)` \| `([^`]*)` \|/gm)].map((m) => [m[1], m[2], m[3]]);
  const leaves = configLeaves().map((l) => [l.path.join('.'), envNameFor(l.path), JSON.stringify((l.schema as { default?: unknown }).default)]);
  t.same(rows, leaves, 'field, environment variable and default, in schema order');
});
