/**
 * `lianfang neighbours` as an installer runs it (child processes, real files): the rings with their
 * distances, --always / --never / --reset, the --json rows, the ring size of the configuration,
 * the SVG street and the terminal sketch; and the proof on a real running gateway: a far shop
 * pinned with --always is alerted by the next 9#, a near one kept out with --never is not, and
 * after --reset both go back to what distance says.
 */
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, connectStreet, GatewayProcess, nearestShops, provisionStreet, query, ROOT, sleep, tempDataDir } from '../helpers/gateway.js';
import { distanceM } from '../../gateway/geo.js';
import { listShops } from '../../gateway/registry/registry.js';
import { openDatabase } from '../../gateway/store/db.js';

interface Row {
  rank: number | null;
  ring: number | null;
  shopId: string;
  name: string;
  doorPlate: string | null;
  distanceM: number | null;
  pinned: boolean;
  excluded: boolean;
}

const ORIGIN = 'DEMO-S016';
/** 55.9 m down the street: in ring 3 by distance. */
const FAR = 'DEMO-S030';
/** Across the road, 14.4 m: in ring 1 by distance. */
const NEAR = 'DEMO-S017';

async function rows(data: string, shopId = ORIGIN, env: NodeJS.ProcessEnv = {}, extra: string[] = []): Promise<Row[]> {
  const r = await cli(['neighbours', shopId, '--data', data, '--json', ...extra], env);
  if (r.code !== 0) throw new Error(`neighbours --json failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Row[];
}

const ring = (rs: Row[], n: number) => rs.filter((r) => r.ring === n).map((r) => r.shopId);

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

  const always = await cli(['neighbours', ORIGIN, '--always', FAR, '--data', data]);
  t.equal(always.code, 0, always.stderr);
  t.match(always.stderr, `${FAR} is always in ${ORIGIN}'s first ring`);
  t.match(always.stderr, 'no gateway is running');
  t.match(always.stdout, new RegExp(`^1\\s+1\\s+${FAR} \\*`, 'm'), 'the table shows it first, marked *');
  t.match(always.stdout, '* pinned into ring 1 (--always)');
  const pinned = await rows(data);
  t.equal(pinned[0].shopId, FAR);
  t.match(pinned[0], { rank: 1, ring: 1, pinned: true });
  t.same(ring(pinned, 1), [FAR, ...ring(plain, 1).slice(0, 9)], 'ring 1 still holds 10: the tenth nearest makes room');
  t.equal(pinned.find((r) => r.shopId === ring(plain, 1)[9])!.ring, 2);

  const never = await cli(['neighbours', ORIGIN, '--never', NEAR, '--data', data]);
  t.equal(never.code, 0, never.stderr);
  t.match(never.stderr, `${ORIGIN} and ${NEAR} are never each other's neighbours`);
  t.match(never.stdout, /Never neighbours \(--never\), both ways:\n\s+DEMO-S017 17号 /);
  const both = await rows(data);
  t.notOk(both.some((r) => r.shopId === NEAR && !r.excluded), 'the near shop is in no ring');
  t.match(both[both.length - 1], { shopId: NEAR, rank: null, ring: null, excluded: true, distanceM: 14.4 });
  t.equal(ring(both, 1).length, 10);
  const fromNear = await rows(data, NEAR);
  t.notOk(fromNear.some((r) => r.shopId === ORIGIN && !r.excluded), 'never works both ways');
  t.ok(fromNear.some((r) => r.shopId === ORIGIN && r.excluded));

  const reset1 = await cli(['neighbours', ORIGIN, '--reset', FAR, '--data', data]);
  t.match(reset1.stderr, `rule for ${ORIGIN} and ${FAR} removed`);
  const reset2 = await cli(['neighbours', NEAR, '--reset', ORIGIN, '--data', data]);
  t.equal(reset2.code, 0, 'a never is undone from either side');
  t.same(await rows(data), plain, 'after --reset the rings are what distance says');
  const again = await cli(['neighbours', ORIGIN, '--reset', FAR, '--data', data]);
  t.equal(again.code, 0);
  t.match(again.stderr, `${ORIGIN} had no rule about ${FAR}: nothing changed`);

  const self = await cli(['neighbours', ORIGIN, '--always', ORIGIN, '--data', data]);
  t.equal(self.code, 2);
  t.match(self.stderr, /LF_ERR_INVALID_ARGUMENT.*not its own neighbour/);
  const missing = await cli(['neighbours', ORIGIN, '--never', 'NOPE', '--data', data]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, 'LF_ERR_NOT_FOUND: shop NOPE does not exist');
  const two = await cli(['neighbours', ORIGIN, '--always', FAR, '--never', NEAR, '--data', data]);
  t.equal(two.code, 2, 'one rule at a time');
  t.equal(query(data, 'SELECT * FROM neighbour_rules').length, 0, 'refused changes stored nothing');
  const noShop = await cli(['neighbours', 'NOPE', '--data', data]);
  t.equal(noShop.code, 2);
});

t.test('the ring size comes from the configuration, as the gateway reads it', async (t) => {
  const data = tempDataDir(t);
  await provisionStreet(data, 30);
  const fromEnv = await rows(data, ORIGIN, { LF_ESCALATION_RING_SIZE: '5' });
  t.same([ring(fromEnv, 1).length, ring(fromEnv, 2).length, ring(fromEnv, 3).length, fromEnv.length], [5, 5, 5, 15], 'LF_ESCALATION_RING_SIZE');
  const file = join(data, 'config.json');
  writeFileSync(file, JSON.stringify({ escalation: { ringSize: 4, maxRings: 2 } }));
  const fromFile = await rows(data, ORIGIN, {}, ['--config', file]);
  t.same([ring(fromFile, 1).length, ring(fromFile, 2).length, fromFile.length], [4, 4, 8], '--config: ring size and ring count');
  const capped = await rows(data, ORIGIN, {}, ['--count', '3']);
  t.same(capped.map((r) => r.rank), [1, 2, 3], '--count caps the list');
  const table = await cli(['neighbours', ORIGIN, '--data', data], { LF_ESCALATION_RING_SIZE: '5' });
  t.match(table.stdout, 'rings 1–3 of 5 shops');
});

t.test('the terminal sketch, the Chinese text and --help', async (t) => {
  const data = tempDataDir(t);
  await provisionStreet(data, 30);
  await cli(['neighbours', ORIGIN, '--always', FAR, '--data', data]);
  await cli(['neighbours', ORIGIN, '--never', NEAR, '--data', data]);
  const r = await cli(['neighbours', ORIGIN, '--data', data]);
  t.equal(r.code, 0, r.stderr);
  const sketch = r.stdout.slice(r.stdout.indexOf('\n\n') + 2).split('\n');
  const map = sketch.filter((l) => /[@123*x.]/.test(l) && !l.includes('this shop'));
  t.equal(map.length, 2, 'two rows of shops facing each other');
  t.equal(map.join('').split('@').length - 1, 1, 'the origin once');
  t.equal(map.join('').split('*').length - 1, 1, 'the pinned shop');
  t.equal(map.join('').split('x').length - 1, 1, 'the excluded shop');
  t.equal(map.join('').replace(/\s/g, '').length, 30, 'every shop a character');
  t.match(r.stdout, '@ this shop  1 2 3 its rings  * pinned  x never');
  t.notMatch(r.stdout, /\x1b\[/, 'no colours when stdout is not a terminal');

  const zh = await cli(['neighbours', ORIGIN, '--data', data], { LANG: 'zh_CN.UTF-8' });
  t.match(zh.stdout, `${ORIGIN} 阿妹粿条 的邻居：第 1–3 圈，每圈 10 家`);
  t.match(zh.stdout, /^圈\s+#\s+店铺\s+门牌\s+名称\s+距离（米）/m);
  t.match(zh.stdout, '排除（--never），双向：');
  t.match(zh.stdout, '@ 本店');

  const help = await cli(['neighbours', '--help']);
  t.equal(help.code, 0);
  for (const opt of ['--always', '--never', '--reset', '--svg', '--config', '--json']) t.match(help.stdout, opt);
  t.match(help.stdout, /Examples:\n\s+\$ lianfang neighbours S01\n/);
});

t.test('--svg draws the street: one dot per shop with its door plate, rings, marks, legend, scale', async (t) => {
  const data = tempDataDir(t);
  await provisionStreet(data, 30);
  await cli(['neighbours', ORIGIN, '--always', FAR, '--data', data]);
  await cli(['neighbours', ORIGIN, '--never', NEAR, '--data', data]);
  const file = join(data, 'street.svg');
  const r = await cli(['neighbours', ORIGIN, '--svg', file, '--data', data]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, `street drawn to ${file}`);
  const svg = readFileSync(file, 'utf8');
  t.equal(wellFormed(svg), null, 'well-formed');
  t.match(svg, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/);
  t.equal(svg.match(/<circle class="dot"/g)?.length, 30, 'one dot per shop');
  for (let i = 1; i <= 30; i++) t.match(svg, new RegExp(`>${i}号( \\*)?</text>`), `door plate ${i}号`);
  const group = (id: string) => svg.match(new RegExp(`<g class="([^"]+)" data-shop="${id}">`))?.[1];
  t.equal(group(ORIGIN), 'shop origin');
  t.equal(group(FAR), 'shop ring1 pinned');
  t.equal(group(NEAR), 'shop excluded');
  t.equal(group(nearestShops(data, ORIGIN, 1)[0]), 'shop ring1');
  const classes = [...svg.matchAll(/<g class="shop (\w+)/g)].map((m) => m[1]);
  t.same([1, 2, 3].map((n) => classes.filter((c) => c === `ring${n}`).length), [10, 10, 8], 'rings 1, 2, 3 (one of ring 1\'s kept apart)');
  t.equal(new Set(['ring1', 'ring2', 'ring3'].map((k) => svg.match(new RegExp(`class="shop ${k}"[^]*?class="dot"[^>]*fill="(#[0-9a-f]{6})"`))?.[1])).size, 3, 'three colours');
  t.match(svg, /class="pin-mark"/);
  t.match(svg, /class="excluded-mark"/);
  for (const text of ['Alarm shop 报警店铺', 'Ring 1 第一圈', 'Ring 2 第二圈', 'Ring 3 第三圈', 'Pinned (--always) 固定邻居', 'Excluded (--never) 排除']) t.match(svg, `>${text}</text>`);
  const bar = svg.match(/<g class="scale-bar" data-metres="(\d+)">[^]*?>(\d+) m 米</);
  t.ok(bar && bar[1] === bar[2] && /^[125]0*$/.test(bar[1]), `a scale bar of a round number of metres (${bar?.[1]})`);

  // Rendered by a real browser where one is installed (the project does not ship one).
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
    await page.screenshot({ path: join(dir, 'neighbours-chromium.png'), fullPage: true });
  });
});

t.test('proof on a running gateway: --always and --never change who the next 9# alerts, --reset undoes it', async (t) => {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 30);
  const gw = await GatewayProcess.start(t, data);
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const byDistance = nearestShops(data, ORIGIN, 10);
  t.ok(byDistance.includes(NEAR) && !byDistance.includes(FAR), 'by distance the near shop is alerted and the far one is not');

  const always = await cli(['neighbours', ORIGIN, '--always', FAR, '--data', data]);
  t.match(always.stderr, 'the running gateway has taken the change');
  const never = await cli(['neighbours', ORIGIN, '--never', NEAR, '--data', data]);
  t.match(never.stderr, 'the running gateway has taken the change');
  const shown = ring(await rows(data), 1);

  /** Raise a 9# from the origin and return the alarm once its alerts have arrived; then close it. */
  const alarmAlerting = async (expected: string[]) => {
    const seen = new Set(officer.updates.map((a) => a.alarmId));
    await keypads.get(ORIGIN)!.press('9#');
    const alarm = await officer.waitFor((a) => a.shopId === ORIGIN && a.state === 'raised' && !seen.has(a.alarmId));
    t.equal(alarm.shopsAlerted, 10, 'ten shops alerted');
    await Promise.all(expected.map((id) => keypads.get(id)!.waitFor((a) => a.alarmId === alarm.alarmId)));
    await sleep(300);
    const alerted = [...keypads].filter(([, kp]) => kp.alerts.some((a) => a.alarmId === alarm.alarmId)).map(([id]) => id);
    const recipients = query<{ shopId: string; ring: number }>(data, 'SELECT shop_id AS shopId, ring FROM alarm_recipients WHERE alarm_id = ?', alarm.alarmId);
    await officer.act({ alarmId: alarm.alarmId, action: 'ack' });
    await officer.act({ alarmId: alarm.alarmId, action: 'close', disposition: 'false' });
    await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.state === 'closed');
    return { alerted: alerted.sort(), recipients };
  };

  const ruled = await alarmAlerting(shown);
  t.ok(ruled.alerted.includes(FAR), 'the far shop pinned with --always is alerted');
  t.notOk(ruled.alerted.includes(NEAR), 'the near shop kept out with --never is not');
  t.same(ruled.alerted, [...shown].sort(), 'the engine alerts exactly the ring 1 the CLI shows');
  t.ok(ruled.recipients.every((r) => r.ring === 1));

  await cli(['neighbours', ORIGIN, '--reset', FAR, '--data', data]);
  const reset = await cli(['neighbours', ORIGIN, '--reset', NEAR, '--data', data]);
  t.match(reset.stderr, 'the running gateway has taken the change');
  const back = await alarmAlerting(byDistance);
  t.same(back.alerted, [...byDistance].sort(), 'after --reset the ten nearest again');
  t.ok(back.alerted.includes(NEAR) && !back.alerted.includes(FAR));
});
