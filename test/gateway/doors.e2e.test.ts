/**
 * Door contacts end to end (issue 9 "Door contacts"): the gateway in-process on a ManualClock, its
 * broker on a loopback port, the street's MQTT keypads, an MQTT door contact and the officer's
 * console as the simulators over TCP. A shop armed from its keypad (`*` PIN `*1#`, answered
 * 已布防) whose door opens raises an intrusion to the console and the 10 nearest neighbours when
 * the entry delay runs out, across a gateway restart in the middle of it; a disarm from the keypad
 * after the restart stops it (answered 已撤防). A duress disarm looks like a disarm at the keypad,
 * the console gets a duress alarm and no neighbour anything. A door held open while disarmed is a
 * door-held fault on the console, also when the gateway restarts while it is open, cleared when it
 * closes.
 */
import t, { type Test } from 'tap';
import { tempDataDir, provisionStreet, connectStreet, nearestShops, query, startGateway } from '../helpers/gateway.js';
import { eventually } from '../helpers/wired.js';
import type { Gateway } from '../../gateway/controller.js';
import { ManualClock } from '../../gateway/clock.js';
import { openDatabase } from '../../gateway/store/db.js';
import { loadOrCreateGatewayKey } from '../../gateway/secrets.js';
import { addDevice } from '../../gateway/registry/registry.js';
import { setShopPins } from '../../gateway/alarm/pins.js';
import { SimDoorContact, type SimKeypad } from '../../simulators/mqtt-devices.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import type { StreetFile } from '../../simulators/street.js';
import mqtt from 'mqtt';

const PIN = '24680864';
const DURESS = '13577531';
const ENTRY_DELAY_MS = 30_000;
const HELD_OPEN_MS = 60_000;

function start(t: Test, data: string, clock: ManualClock, mqttPort = 0): Promise<Gateway> {
  const overrides = { escalation: { ringIntervalMs: 3600_000, ackDeadlineMs: 3600_000 }, doors: { entryDelayMs: ENTRY_DELAY_MS, heldOpenMs: HELD_OPEN_MS } };
  return startGateway(t, data, overrides, { clock, mqttPort });
}

/** The gateway on a fresh clock, the street's keypads and console, and the door contact, connected; the origin's keypad. */
async function connectAll(t: Test, s: Street) {
  const clock = new ManualClock();
  const gw = await start(t, s.data, clock);
  const { keypads, console: officer } = await connectStreet(t, s.street, url(gw));
  await s.door.connect(url(gw));
  return { clock, gw, keypads, officer, kp: keypads.get(s.origin)! };
}

interface Street {
  data: string;
  street: StreetFile;
  origin: string;
  door: SimDoorContact;
  doorId: string;
}

/** A street of 12 shops; the origin (shop 5) has PINs and an MQTT door contact. */
async function street(t: Test): Promise<Street> {
  const data = tempDataDir(t);
  const street = await provisionStreet(data, 12);
  const origin = street.shops[5]!.shopId;
  const db = openDatabase(data);
  let door: SimDoorContact;
  try {
    const key = loadOrCreateGatewayKey(data);
    setShopPins(db, key, origin, { pin: PIN, duressPin: DURESS }, 'test', new Date().toISOString());
    const issued = addDevice(db, key, { shopId: origin, type: 'io-module', transport: 'mqtt', id: `${origin}.door.d1` });
    door = new SimDoorContact(issued.device.id, { username: issued.username!, password: issued.password! });
  } finally {
    db.close();
  }
  t.teardown(() => door.close());
  return { data, street, origin, door, doorId: `${origin}.door.d1` };
}

const url = (gw: Gateway) => `mqtt://127.0.0.1:${gw.ports().mqtt}`;

/** Move the clock, then let what fell due commit. */
async function advance(gw: Gateway, clock: ManualClock, ms: number): Promise<void> {
  clock.advance(ms);
  await gw.writer.run(() => undefined);
}

const shows = (kp: SimKeypad, text: string) => kp.waitForCommand((c) => c.command === 'display' && c.text === text);
const alarmsOf = (data: string, shopId: string) => query<{ id: string; kind: string; duress: number }>(data, 'SELECT id, kind, duress FROM alarms WHERE shop_id = ? ORDER BY raised_at', shopId);

for (const disarmAfterRestart of [false, true]) {
  t.test(`armed from the keypad, a door opens, the gateway restarts in the entry delay: ${disarmAfterRestart ? 'a disarm after the restart stops it' : 'the intrusion is raised'}`, async (t) => {
    const s = await street(t);
    const { clock, gw: gw1, keypads, officer, kp } = await connectAll(t, s);

    await kp.press(`*${PIN}*1#`);
    await shows(kp, '已布防');
    t.equal(gw1.engine.arming(s.origin).armed, true, 'armed from the keypad');
    await s.door.setOpen(true);
    t.ok(gw1.engine.arming(s.origin).entry, 'the door opening started the entry delay');
    await advance(gw1, clock, ENTRY_DELAY_MS / 2);

    const port = gw1.ports().mqtt;
    await gw1.stop();
    clock.advance(2000);
    const gw2 = await start(t, s.data, clock, port);
    await eventually(() => [...keypads.values()].every((k) => k.client.connected) && s.door.client.connected && officer.client.connected, 'every client reconnected');
    t.ok(gw2.engine.arming(s.origin).entry, 'the entry delay survived the restart');

    if (disarmAfterRestart) {
      await kp.press(`*${PIN}#`);
      await shows(kp, '已撤防');
      await advance(gw2, clock, ENTRY_DELAY_MS);
      t.same(alarmsOf(s.data, s.origin), [], 'nothing raised');
      t.same(query(s.data, "SELECT count(*) AS n FROM outbox WHERE recipient_kind IN ('shop', 'station')"), [{ n: 0 }], 'nothing for a console or a neighbour');
      return;
    }
    await advance(gw2, clock, ENTRY_DELAY_MS / 2 - 2000 - 1);
    t.same(alarmsOf(s.data, s.origin), [], 'not before the delay ends');
    await advance(gw2, clock, 1);
    const alarm = await officer.waitFor((a) => a.shopId === s.origin && a.state === 'raised');
    t.match(alarm, { kind: 'intrusion', priority: 2, duress: false, test: false }, 'the console gets an intrusion alarm');
    const expected = nearestShops(s.data, s.origin, 10);
    await Promise.all(expected.map((id) => keypads.get(id)!.waitFor((x) => x.alarmId === alarm.alarmId && x.state === 'raised' && x.kind === 'intrusion')));
    t.pass('the 10 nearest neighbours get it');
  });
}

t.test('a duress disarm: the keypad sees a disarm, the console a duress alarm, no neighbour anything', async (t) => {
  const s = await street(t);
  const { clock, gw, keypads, officer, kp } = await connectAll(t, s);
  await kp.press(`*${PIN}*1#`);
  await shows(kp, '已布防');
  await s.door.setOpen(true);
  const from = kp.commands.length;
  await kp.press(`*${DURESS}#`);
  await shows(kp, '已撤防');
  const alarm = await officer.waitFor((a) => a.shopId === s.origin && a.duress === true);
  t.match(alarm, { state: 'raised', priority: 1 }, 'the console gets a duress alarm');
  await advance(gw, clock, 2 * ENTRY_DELAY_MS);
  t.match(alarmsOf(s.data, s.origin), [{ kind: 'panic', duress: 1 }], 'and no intrusion');
  t.match(kp.commands.slice(from).map((c) => [c.command, c.text ?? c.colour]), [['display', '已撤防'], ['led', 'off']], 'the keypad is told what a disarm tells it');
  for (const [shopId, k] of keypads) t.same(k.alerts, [], `${shopId}: no alert`);
});

t.test('a door held open while disarmed is a door-held fault, across a restart too; cleared when it closes', async (t) => {
  const s = await street(t);
  const clock = new ManualClock();
  const gw1 = await start(t, s.data, clock);
  const faults: Record<string, unknown>[] = [];
  const watcher = await mqtt.connectAsync(url(gw1), { clientId: `${s.street.officer.username}:faults`, username: s.street.officer.username, password: s.street.officer.password, reconnectPeriod: 200 });
  t.teardown(() => watcher.endAsync(true));
  watcher.on('message', (_topic, payload) => faults.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>));
  await watcher.subscribeAsync(topics.stationFaults(s.street.stationId), { qos: 1 });
  await s.door.connect(url(gw1));
  const doorFaults = () => faults.filter((f) => f.deviceId === s.doorId && f.fault === 'door-held').map((f) => f.state);

  await s.door.setOpen(true);
  await advance(gw1, clock, HELD_OPEN_MS - 1);
  t.notOk(gw1.supervisor.isFaulted(s.doorId, 'door-held'), 'not before heldOpenMs');
  await advance(gw1, clock, 1);
  t.ok(gw1.supervisor.isFaulted(s.doorId, 'door-held'), 'held open: a fault');
  await eventually(() => doorFaults().includes('raised'), 'door-held raised on the faults topic');
  await s.door.setOpen(false);
  await eventually(() => doorFaults().includes('cleared'), 'cleared when the door closes');
  t.notOk(gw1.supervisor.isFaulted(s.doorId, 'door-held'));

  // Opened again, then the gateway restarts while the door is open.
  await s.door.setOpen(true);
  await advance(gw1, clock, HELD_OPEN_MS / 2);
  const port = gw1.ports().mqtt;
  await gw1.stop();
  const gw2 = await start(t, s.data, clock, port);
  await eventually(() => s.door.client.connected && watcher.connected, 'the door contact and the console reconnected');
  await advance(gw2, clock, HELD_OPEN_MS / 2 - 1);
  t.notOk(gw2.supervisor.isFaulted(s.doorId, 'door-held'), 'timed from the stored opening, not from the restart: not yet');
  await advance(gw2, clock, 1);
  t.ok(gw2.supervisor.isFaulted(s.doorId, 'door-held'), 'held open across the restart: a fault');
  await s.door.setOpen(false);
  await eventually(() => !gw2.supervisor.isFaulted(s.doorId, 'door-held'), 'cleared when it closes');
  await eventually(() => doorFaults().join() === 'raised,cleared,raised,cleared', 'the console saw both held doors raised and cleared');
  t.match(query(s.data, "SELECT cleared_at, ticket, closed_as FROM faults WHERE device_id = ? AND kind = 'door-held' ORDER BY raised_at", s.doorId), [{ cleared_at: String, ticket: 'fixed', closed_as: 'recovered' }, { cleared_at: String, ticket: 'fixed', closed_as: 'recovered' }], 'both stored, both cleared, their tickets closed as recovered');
});

t.test('an armed shop: a door held open is the entry delay, not a door-held fault', async (t) => {
  const s = await street(t);
  const clock = new ManualClock();
  const gw = await start(t, s.data, clock);
  await s.door.connect(url(gw));
  await gw.writer.run((fx) => gw.engine.setArmed(fx, s.origin, true, 'cli:test'));
  await s.door.setOpen(true);
  await advance(gw, clock, ENTRY_DELAY_MS);
  await advance(gw, clock, HELD_OPEN_MS);
  t.match(alarmsOf(s.data, s.origin), [{ kind: 'intrusion' }], 'an intrusion');
  t.notOk(gw.supervisor.isFaulted(s.doorId, 'door-held'), 'no door-held while armed');
});
