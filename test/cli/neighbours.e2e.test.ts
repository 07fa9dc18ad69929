/**
 * `lianfang neighbours` as an installer runs it (child processes, real files): the rings with their
 * distances, --always / --never / --reset, the --json rows, the ring size of the configuration,
 * the terminal sketch, the SVG street (and its rendering in a browser where one is installed).
 * The proof on a running gateway is test/cli/neighbours-alarm.e2e.test.ts.
 */
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { CLI, cli, nearestShops, provisionStreet, query, ROOT, tempDataDir } from '../helpers/gateway.js';
import { FAR, NEAR, ORIGIN, neighbourRows as rows, ringOf as ring } from '../helpers/neighbours.js';
import { distanceM } from '../../gateway/geo.js';
import { listShops } from '../../gateway/registry/registry.js';
import { openDatabase } from '../../gateway/store/db.js';

/** Distances from the origin computed here from the stored coordinates, nearest first (ties by id). */
function independentRanking(data: string, origin: string): { id: string; m: number }[] {
  const db = openDatabase(data);
  try {
    const shops = listShops(db);
    const o = shops.find((s) => s.id === origin)!;
    return shops
      .filter((s) => s.id !== origin)
      .map((s) => ({ id: s.id, m: distanceM(o.lat!, o.lon!, s.lat!, s.lon!) }))
      .sort((a, b) => a.m - b.m || a.id.localeCompare(b.id));
  } finally {
    db.close();
  }
}

/** Tags open and close in order, attributes quoted, entities known: enough of XML to catch a broken file. */
function wellFormed(xml: string): string | null {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->/g;
  let last = 0;
  for (const m of body.matchAll(tag)) {
    const text = body.slice(last, m.index);
    if (/[<>]/.test(text)) return `stray < or > before offset ${m.index}`;
    if (/&(?!(?:amp|lt|gt|quot|apos|#\d+);)/.test(text)) return `bare & before offset ${m.index}`;
    last = m.index! + m[0].length;
    if (m[0].startsWith('<!--') || m[4]) continue;
    if (m[1]) {
      if (stack.pop() !== m[2]) return `</${m[2]}> closes the wrong element at ${m.index}`;
    } else stack.push(m[2]!);
  }
  if (body.slice(last).trim()) return 'text after the root element';
  return stack.length ? `unclosed ${stack.join(', ')}` : null;
}

t.test('rings, rules and --json from the CLI', async (t) => {
  const data = tempDataDir(t);
  await provisionStreet(data, 30);
  const plain = await rows(data);
  const expected = independentRanking(data, ORIGIN);
  t.same(plain.map((r) => r.rank), Array.from({ length: 29 }, (_, i) => i + 1), 'ranks 1..29: every shop of the street, in three rings');
  t.same(plain.map((r) => r.shopId), expected.map((e) => e.id), 'nearest first, as computed here from the coordinates');
  plain.forEach((r, i) => t.ok(Math.abs(r.distanceM! - expected[i].m) <= 0.05, `${r.shopId}: ${r.distanceM} m`));
  t.same([ring(plain, 1).length, ring(plain, 2).length, ring(plain, 3).length], [10, 10, 9]);
  t.same(ring(plain, 1), nearestShops(data, ORIGIN, 10), 'ring 1 is the ten nearest');
  t.ok(ring(plain, 3).includes(FAR) && ring(plain, 1).includes(NEAR), 'the far shop is in ring 3, the near one in ring 1');
  t.notOk(plain.some((r) => r.pinned || r.excluded));
  t.match(plain[0], { rank: 1, ring: 1, shopId: String, name: String, doorPlate: String, distanceM: Number, pinned: false, excluded: false });

  const always = await cli(['neighbours', ORIGIN, '--always', FAR, '--data', data, '--json']);
  t.equal(always.code, 0, always.stderr);
  t.match(always.stderr, `${FAR} is always in ${ORIGIN}'s first ring`);
  t.match(always.stderr, 'no gateway is running');
  const pinned = JSON.parse(always.stdout) as typeof plain;
  t.equal(pinned[0].shopId, FAR);
  t.match(pinned[0], { rank: 1, ring: 1, pinned: true });
  t.same(ring(pinned, 1), [FAR, ...ring(plain, 1).slice(0, 9)], 'ring 1 still holds 10: the tenth nearest makes room');
  t.equal(pinned.find((r) => r.shopId === ring(plain, 1)[9])!.ring, 2);
  t.same(query(data, 'SELECT shop_id, other_id, rule, created_by FROM neighbour_rules'), [{ shop_id: ORIGIN, other_id: FAR, rule: 'always', created_by: `cli:${userInfo().username}` }]);

  const never = await cli(['neighbours', ORIGIN, '--never', NEAR, '--data', data, '--json']);
  t.equal(never.code, 0, never.stderr);
  t.match(never.stderr, `${ORIGIN} and ${NEAR} are never each other's neighbours`);
  const both = JSON.parse(never.stdout) as typeof plain;
  t.notOk(both.some((r) => r.shopId === NEAR && !r.excluded), 'the near shop is in no ring');
  t.match(both[both.length - 1], { shopId: NEAR, rank: null, ring: null, excluded: true, distanceM: 14.4 });
  t.equal(ring(both, 1).length, 10);
  const fromNear = await rows(data, NEAR);
  t.notOk(fromNear.some((r) => r.shopId === ORIGIN && !r.excluded), 'never works both ways');
  t.ok(fromNear.some((r) => r.shopId === ORIGIN && r.excluded));

  const reset1 = await cli(['neighbours', ORIGIN, '--reset', FAR, '--data', data]);
  t.match(reset1.stderr, `rule for ${ORIGIN} and ${FAR} removed`);
  const unkept = await rows(data, NEAR, ['--reset', ORIGIN]);
  t.ok(unkept.some((r) => r.shopId === ORIGIN && r.ring === 1), 'a never is undone from either side');
  t.same(await rows(data), plain, 'after --reset the rings are what distance says');
  const again = await cli(['neighbours', ORIGIN, '--reset', FAR, '--data', data]);
  t.equal(again.code, 0);
  t.match(again.stderr, `${ORIGIN} had no rule about ${FAR}: nothing changed`);

  const refused = [
    [['--always', ORIGIN], /LF_ERR_INVALID_ARGUMENT.*not its own neighbour/],
    [['--never', 'NOPE'], /LF_ERR_NOT_FOUND: shop NOPE does not exist/],
    [['--always', FAR, '--never', NEAR], /one of them at a time/],
  ] as const;
  const results = await Promise.all(refused.map(([args]) => cli(['neighbours', ORIGIN, ...args, '--data', data])));
  results.forEach((r, i) => {
    t.equal(r.code, 2, refused[i][0].join(' '));
    t.match(r.stderr, refused[i][1]);
  });
  t.equal(query(data, 'SELECT * FROM neighbour_rules').length, 0, 'refused changes stored nothing');
});

t.test('the ring size comes from the configuration, as the gateway reads it', async (t) => {
  const data = tempDataDir(t);
  await provisionStreet(data, 30);
  const fromEnv = await rows(data, ORIGIN, [], { LF_ESCALATION_RING_SIZE: '5' });
  t.same([ring(fromEnv, 1).length, ring(fromEnv, 2).length, ring(fromEnv, 3).length, fromEnv.length], [5, 5, 5, 15], 'LF_ESCALATION_RING_SIZE');
  const file = join(data, 'config.json');
  writeFileSync(file, JSON.stringify({ escalation: { ringSize: 4, maxRings: 2 } }));
  const fromFile = await rows(data, ORIGIN, ['--config', file, '--count', '6']);
  t.same(fromFile.map((r) => r.ring), [1, 1, 1, 1, 2, 2], '--config: ring size and ring count; --count caps the list');
  const table = await cli(['neighbours', ORIGIN, '--data', data], { LF_ESCALATION_RING_SIZE: '5' });
  t.match(table.stdout, 'rings 1–3 of 5 shops');
});

t.test('the table, the terminal sketch, the SVG street, the Chinese text and --help', async (t) => {
  const data = tempDataDir(t);
  await provisionStreet(data, 30);
  await cli(['neighbours', ORIGIN, '--always', FAR, '--data', data]);
  await cli(['neighbours', ORIGIN, '--never', NEAR, '--data', data]);

  const r = await cli(['neighbours', ORIGIN, '--data', data]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^1\\s+1\\s+${FAR} \\*\\s+30号`, 'm'), 'the table shows the pinned shop first, marked *');
  t.match(r.stdout, '* pinned into ring 1 (--always)');
  t.match(r.stdout, /Never neighbours \(--never\), both ways:\n\s+DEMO-S017 17号 /);
  const sketch = r.stdout.slice(r.stdout.indexOf('\n\n') + 2).split('\n');
  const map = sketch.filter((l) => /[@123*x.]/.test(l) && !l.includes('this shop'));
  t.equal(map.length, 2, 'two rows of shops facing each other');
  const count = (ch: string) => map.join('').split(ch).length - 1;
  t.same([count('@'), count('*'), count('x')], [1, 1, 1], 'the origin, the pinned shop and the excluded one, once each');
  t.equal(map.join('').replace(/\s/g, '').length, 30, 'every shop a character');
  t.match(r.stdout, '@ this shop  1 2 3 its rings  * pinned  x never');
  t.notMatch(r.stdout, /\x1b\[/, 'no colours when stdout is not a terminal');

  // On a terminal (a pty from util-linux `script`) the sketch is in colour, unless NO_COLOR is set.
  const onTty = (noColor: string | undefined) => {
    const env: NodeJS.ProcessEnv = { ...process.env, LANG: 'C.UTF-8' };
    // The test runner may set NO_COLOR itself.
    if (noColor === undefined) delete env.NO_COLOR;
    else env.NO_COLOR = noColor;
    return execFileSync('script', ['-qec', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} neighbours ${ORIGIN} --data ${JSON.stringify(data)}`, '/dev/null'], { env, encoding: 'utf8' });
  };
  const hasScript = spawnSync('script', ['--version']).status === 0;
  t.test('colours on a terminal', { skip: hasScript ? false : 'util-linux script is not installed: no pty to run the CLI on' }, async (t) => {
    t.match(onTty(undefined), /\x1b\[1;97;41m@\x1b\[0m/, 'the origin in colour');
    t.notMatch(onTty('1'), /\x1b\[/, 'none with NO_COLOR');
  });

  const file = join(data, 'street.svg');
  const drawn = await cli(['neighbours', ORIGIN, '--svg', file, '--data', data], { LANG: 'zh_CN.UTF-8' });
  t.equal(drawn.code, 0, drawn.stderr);
  t.match(drawn.stdout, `${ORIGIN} 阿妹粿条 的邻居：第 1–3 圈，每圈 10 家`);
  t.match(drawn.stdout, /^圈\s+#\s+店铺\s+门牌\s+名称\s+距离（米）/m);
  t.match(drawn.stdout, '排除（--never），双向：');
  t.match(drawn.stderr, `街道图已写入 ${file}`);
  const svg = readFileSync(file, 'utf8');
  t.equal(wellFormed(svg), null, 'well-formed');
  t.match(svg, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/);
  t.equal(svg.match(/<circle class="dot"/g)?.length, 30, 'one dot per shop');
  for (let i = 1; i <= 30; i++) t.match(svg, new RegExp(`>${i}号( \\*)?</text>`), `door plate ${i}号`);
  const group = (id: string) => svg.match(new RegExp(`<g class="([^"]+)" data-shop="${id}">`))?.[1];
  t.equal(group(ORIGIN), 'shop origin');
  t.equal(group(FAR), 'shop ring1 pinned');
  t.equal(group(NEAR), 'shop excluded');
  const classes = [...svg.matchAll(/<g class="shop (\w+)/g)].map((m) => m[1]);
  t.same([1, 2, 3].map((n) => classes.filter((c) => c === `ring${n}`).length), [10, 10, 8], 'rings 1, 2, 3 (one of ring 1\'s kept apart)');
  const colour = (k: string) => svg.match(new RegExp(`class="shop ${k}"[^]*?class="dot"[^>]*fill="(#[0-9a-f]{6})"`))?.[1];
  t.equal(new Set(['ring1', 'ring2', 'ring3', 'origin'].map(colour)).size, 4, 'three ring colours, the origin apart');
  t.match(svg, /class="pin-mark"/);
  t.match(svg, /class="excluded-mark"/);
  for (const text of ['Alarm shop 报警店铺', 'Ring 1 第一圈', 'Ring 2 第二圈', 'Ring 3 第三圈', 'Pinned (--always) 固定邻居', 'Excluded (--never) 排除']) t.match(svg, `>${text}</text>`);
  const bar = svg.match(/<g class="scale-bar" data-metres="(\d+)">[^]*?>(\d+) m 米</);
  t.ok(bar && bar[1] === bar[2] && /^[125]0*$/.test(bar[1]), `a scale bar of a round number of metres (${bar?.[1]})`);

  const help = await cli(['neighbours', '--help']);
  t.equal(help.code, 0);
  for (const opt of ['--always', '--never', '--reset', '--svg', '--config', '--json']) t.match(help.stdout, opt);
  t.match(help.stdout, /Examples:\n\s+\$ lianfang neighbours S01\n/);

  // Rendered by a real browser: Debian's chromium through playwright-core (.ci/run installs both).
  const playwright = join(ROOT, 'node_modules', 'playwright-core');
  const chromium = '/usr/bin/chromium';
  const missing = [!existsSync(playwright) && 'node_modules/playwright-core', !existsSync(chromium) && chromium].filter(Boolean);
  t.test('rendered in chromium', { skip: missing.length ? `not installed here: ${missing.join(', ')}` : false }, async (t) => {
    const { chromium: browserType } = (await import('playwright-core')) as typeof import('playwright-core');
    const browser = await browserType.launch({ executablePath: chromium, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    t.teardown(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`file://${file}`);
    t.equal(await page.locator('circle.dot').count(), 30, 'the browser sees every dot');
    const box = await page.locator('svg').boundingBox();
    t.ok(box && box.width > 500 && box.height > 100, 'drawn at a readable size');
    const dir = join(ROOT, 'docs', 'screenshots');
    mkdirSync(dir, { recursive: true });
    // The viewport sized to the drawing (a full-page capture of a wide SVG stalls headless chromium).
    await page.setViewportSize({ width: Math.min(Math.ceil(box!.width) + 16, 4000), height: Math.min(Math.ceil(box!.height) + 16, 4000) });
    await page.screenshot({ path: join(dir, 'neighbours-chromium.png') });
  });
});
