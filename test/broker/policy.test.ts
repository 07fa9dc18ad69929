/**
 * Broker policy as pure functions (STYLE.md 4), table-driven, no sockets: who may publish, subscribe,
 * set a will and use which client id (README "MQTT topic contract v1": least privilege).
 */
import t from 'tap';
import {
  canPublish,
  canSubscribe,
  canSetWill,
  checkClientId,
  personClientId,
  deliveryRecipient,
  hasForbiddenIdChars,
  type Principal,
  type Recipient,
} from '../../broker/policy.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';

const devA: Principal = { kind: 'device', deviceId: 'S1.keypad.aa', shopId: 'S1' };
const devA2: Principal = { kind: 'device', deviceId: 'S1.panic.bb', shopId: 'S1' };
const devB: Principal = { kind: 'device', deviceId: 'S2.keypad.cc', shopId: 'S2' };
const officer1: Principal = { kind: 'user', name: 'wang', role: 'officer', stationId: 'PS1' };
const officer2: Principal = { kind: 'user', name: 'li', role: 'officer', stationId: 'PS2' };
const admin1: Principal = { kind: 'user', name: 'root', role: 'admin', stationId: 'PS1' };
const installer: Principal = { kind: 'user', name: 'fitter', role: 'installer', stationId: 'PS1' };
const installerNoStation: Principal = { kind: 'user', name: 'fitter2', role: 'installer', stationId: null };
const officerNoStation: Principal = { kind: 'user', name: 'zhao', role: 'officer', stationId: null };

const everyone: [string, Principal][] = [
  ['device A', devA],
  ['device B', devB],
  ['officer PS1', officer1],
  ['officer PS2', officer2],
  ['admin PS1', admin1],
  ['installer', installer],
];

/** Every concrete topic of the v1 tree for the ids in play. */
const allTopics = (() => {
  const out: string[] = [];
  for (const d of [devA.deviceId, devA2.deviceId, devB.deviceId]) out.push(topics.deviceEvents(d), topics.deviceStatus(d), topics.deviceCommands(d));
  for (const s of ['S1', 'S2']) out.push(topics.shopAlerts(s), topics.shopReplies(s));
  for (const p of ['PS1', 'PS2']) out.push(topics.stationAlarms(p), topics.stationActions(p), topics.stationErrors(p));
  return out;
})();

type Row = [who: string, p: Principal, topic: string, allowed: boolean];

t.test('canPublish', async (t) => {
  const rows: Row[] = [
    // a device: only its own events and status, and its own shop's replies
    ['device A', devA, topics.deviceEvents(devA.deviceId), true],
    ['device A', devA, topics.deviceStatus(devA.deviceId), true],
    ['device A', devA, topics.shopReplies('S1'), true],
    ['device A2 (same shop)', devA2, topics.shopReplies('S1'), true],
    ['device A', devA, topics.deviceEvents(devB.deviceId), false],
    ['device A', devA, topics.deviceEvents(devA2.deviceId), false],
    ['device A', devA, topics.deviceStatus(devB.deviceId), false],
    ['device A', devA, topics.deviceCommands(devA.deviceId), false],
    ['device A', devA, topics.shopReplies('S2'), false],
    ['device A', devA, topics.shopAlerts('S1'), false],
    ['device A', devA, topics.shopAlerts('S2'), false],
    ['device A', devA, topics.stationActions('PS1'), false],
    ['device A', devA, topics.stationAlarms('PS1'), false],
    ['device A', devA, topics.stationErrors('PS1'), false],
    // an officer: only the actions of the own station
    ['officer PS1', officer1, topics.stationActions('PS1'), true],
    ['officer PS1', officer1, topics.stationActions('PS2'), false],
    ['officer PS2', officer2, topics.stationActions('PS2'), true],
    ['officer PS2', officer2, topics.stationActions('PS1'), false],
    ['officer PS1', officer1, topics.stationAlarms('PS1'), false],
    ['officer PS1', officer1, topics.stationErrors('PS1'), false],
    ['officer PS1', officer1, topics.shopAlerts('S1'), false],
    ['officer PS1', officer1, topics.shopReplies('S1'), false],
    ['officer PS1', officer1, topics.deviceEvents(devA.deviceId), false],
    ['officer PS1', officer1, topics.deviceCommands(devA.deviceId), false],
    ['officer without station', officerNoStation, topics.stationActions('PS1'), false],
    // an admin with a station acts for it
    ['admin PS1', admin1, topics.stationActions('PS1'), true],
    ['admin PS1', admin1, topics.stationActions('PS2'), false],
    // not lianfang/v1 topics, malformed ones, wildcards in a publish topic
    ['device A', devA, 'lianfang/v2/devices/S1.keypad.aa/events', false],
    ['device A', devA, `${topics.deviceEvents(devA.deviceId)}/extra`, false],
    ['device A', devA, 'lianfang/v1/devices/+/events', false],
    ['device A', devA, 'lianfang/v1/devices/#', false],
    ['device A', devA, '$SYS/broker/clients', false],
    ['officer PS1', officer1, 'lianfang/v1/stations/+/actions', false],
    ['officer PS1', officer1, '', false],
  ];
  for (const [who, p, topic, allowed] of rows) {
    const d = canPublish(p, topic);
    t.equal(d.ok, allowed, `${who} ${allowed ? 'may' : 'may not'} publish ${JSON.stringify(topic)}`);
    if (!d.ok) t.match(d.reason, /\S/, 'a refusal says why');
  }
  // the installer can do nothing over MQTT: every topic of the tree refused
  for (const inst of [installer, installerNoStation]) {
    for (const topic of allTopics) t.equal(canPublish(inst, topic).ok, false, `installer may not publish ${topic}`);
  }
});

t.test('canPublish returns the parsed topic on success', async (t) => {
  t.same(canPublish(devA, topics.deviceEvents(devA.deviceId)), { ok: true, topic: { kind: 'device-events', id: devA.deviceId } });
  t.same(canPublish(devA, topics.shopReplies('S1')), { ok: true, topic: { kind: 'shop-replies', id: 'S1' } });
  t.same(canPublish(officer1, topics.stationActions('PS1')), { ok: true, topic: { kind: 'station-actions', id: 'PS1' } });
});

t.test('canSubscribe', async (t) => {
  const rows: Row[] = [
    // a device: its own commands and its own shop's alerts, nothing else
    ['device A', devA, topics.deviceCommands(devA.deviceId), true],
    ['device A', devA, topics.shopAlerts('S1'), true],
    ['device A2 (same shop)', devA2, topics.shopAlerts('S1'), true],
    ['device A', devA, topics.deviceCommands(devB.deviceId), false],
    ['device A', devA, topics.deviceCommands(devA2.deviceId), false],
    ['device A', devA, topics.shopAlerts('S2'), false],
    ['device A', devA, topics.deviceEvents(devA.deviceId), false],
    ['device A', devA, topics.deviceEvents(devB.deviceId), false],
    ['device A', devA, topics.deviceStatus(devB.deviceId), false],
    ['device A', devA, topics.shopReplies('S1'), false],
    ['device A', devA, topics.shopReplies('S2'), false],
    ['device A', devA, topics.stationAlarms('PS1'), false],
    ['device A', devA, topics.stationActions('PS1'), false],
    ['device A', devA, topics.stationErrors('PS1'), false],
    // an officer: the own station's alarms, errors and faults
    ['officer PS1', officer1, topics.stationAlarms('PS1'), true],
    ['officer PS1', officer1, topics.stationErrors('PS1'), true],
    ['officer PS1', officer1, topics.stationAlarms('PS2'), false],
    ['officer PS1', officer1, topics.stationErrors('PS2'), false],
    ['officer PS1', officer1, topics.stationFaults('PS1'), true],
    ['officer PS1', officer1, topics.stationFaults('PS2'), false],
    ['device A', devA, topics.stationFaults('PS1'), false],
    ['officer PS1', officer1, topics.stationActions('PS1'), false],
    ['officer PS1', officer1, topics.shopAlerts('S1'), false],
    ['officer PS1', officer1, topics.shopReplies('S1'), false],
    ['officer PS1', officer1, topics.deviceEvents(devA.deviceId), false],
    ['officer PS1', officer1, topics.deviceCommands(devA.deviceId), false],
    ['officer without station', officerNoStation, topics.stationAlarms('PS1'), false],
    ['admin PS1', admin1, topics.stationAlarms('PS1'), true],
    // an admin may look at any scope (issue 11), and acts only for their own station (canPublish)
    ['admin PS1', admin1, topics.stationAlarms('PS2'), true],
    ['admin PS1', admin1, topics.stationFaults('PS2'), true],
    ['admin PS1', admin1, topics.shopAlerts('S1'), false],
  ];
  for (const [who, p, filter, allowed] of rows) {
    const d = canSubscribe(p, filter);
    t.equal(d.ok, allowed, `${who} ${allowed ? 'may' : 'may not'} subscribe ${filter}`);
  }
  for (const inst of [installer, installerNoStation]) {
    for (const topic of allTopics) t.equal(canSubscribe(inst, topic).ok, false, `installer may not subscribe ${topic}`);
  }
});

t.test('wildcard and $SYS filters are refused for everyone', async (t) => {
  const filters = [
    '#',
    '+',
    '$SYS/#',
    '$SYS/broker/clients/connected',
    'lianfang/#',
    'lianfang/v1/#',
    'lianfang/v1/devices/+/events',
    'lianfang/v1/devices/+/commands',
    `lianfang/v1/devices/${devA.deviceId}/+`,
    `lianfang/v1/devices/${devA.deviceId}/#`,
    'lianfang/v1/shops/+/alerts',
    'lianfang/v1/shops/S1/+',
    'lianfang/v1/stations/+/alarms',
    'lianfang/v1/stations/PS1/#',
    '+/v1/shops/S1/alerts',
  ];
  for (const [who, p] of everyone) {
    for (const f of filters) {
      const d = canSubscribe(p, f);
      t.equal(d.ok, false, `${who}: ${f} refused`);
      if (!d.ok) t.match(d.reason, /wildcard and \$SYS/);
    }
  }
});

t.test('checkClientId', async (t) => {
  const deviceIds = new Set([devA.deviceId, devA2.deviceId, devB.deviceId]);
  const isDeviceId = (id: string) => deviceIds.has(id);
  const rows: [who: string, p: Principal, clientId: string, ok: boolean][] = [
    ['device A', devA, devA.deviceId, true],
    ['device A', devA, devB.deviceId, false],
    ['device A', devA, `${devA.deviceId}-2`, false],
    ['device A', devA, 'anything', false],
    ['device A', devA, '', false],
    ['officer', officer1, 'wang', true],
    ['officer', officer1, 'wang:console', true],
    ['officer', officer1, 'wang:pc-2:tab.3', true],
    // A person's client id belongs to that person: no one else's console can be pushed off.
    ['officer', officer1, 'duty-pc-1', false],
    ['officer', officer1, 'li', false],
    ['officer', officer1, 'li:console', false],
    ['officer', officer2, 'wang:console', false],
    ['officer', officer1, 'wangx', false],
    ['officer', officer1, 'wang-2', false],
    ['officer', officer1, 'wang.console', false],
    ['officer', officer1, 'wang:', false],
    ['officer', officer1, ':wang', false],
    ['officer', officer1, 'xwang:console', false],
    ['admin', admin1, 'root:console', true],
    ['admin', admin1, 'wang:console', false],
    ['officer', officer1, devA.deviceId, false],
    ['officer', officer1, devB.deviceId, false],
    ['installer', installer, devA2.deviceId, false],
    ['officer', officer1, '', false],
    ['officer', officer1, 'a+b', false],
    ['officer', officer1, 'a#b', false],
    ['officer', officer1, 'a/b', false],
    ['officer', officer1, '#', false],
    ['officer', officer1, 'a\u0000b', false],
  ];
  for (const [who, p, id, ok] of rows) {
    const reason = checkClientId(p, id, isDeviceId);
    if (ok) t.equal(reason, null, `${who} may use client id ${JSON.stringify(id)}`);
    else t.type(reason, 'string', `${who} may not use client id ${JSON.stringify(id)}`);
  }
  // A device id with a colon is still a device's: a person whose name prefixes it may not take it.
  const colonDevice = (id: string) => id === 'wang:keypad';
  t.type(checkClientId(officer1, 'wang:keypad', colonDevice), 'string', "a device's id is never a person's client id");
  t.equal(personClientId('wang'), 'wang');
  t.equal(personClientId('wang', 'console'), 'wang:console');
  t.equal(checkClientId(officer1, personClientId('wang', 'console'), isDeviceId), null, 'personClientId builds an accepted id');
  // a device whose own id carried a forbidden char would still be refused: the char check comes first
  const odd: Principal = { kind: 'device', deviceId: 'x/y', shopId: 'S1' };
  t.match(checkClientId(odd, 'x/y', () => true), /\+ # \//);
  t.equal(hasForbiddenIdChars('S1.keypad-01:a_b'), false);
  for (const c of ['+', '#', '/', '\u0000']) t.equal(hasForbiddenIdChars(`a${c}b`), true, `${JSON.stringify(c)} is forbidden`);
});

t.test('canSetWill: only a device, only its own status topic', async (t) => {
  const rows: [who: string, p: Principal, topic: string, ok: boolean][] = [
    ['device A', devA, topics.deviceStatus(devA.deviceId), true],
    ['device A', devA, topics.deviceStatus(devB.deviceId), false],
    ['device A', devA, topics.deviceEvents(devA.deviceId), false],
    ['device A', devA, topics.shopReplies('S1'), false],
    ['device A', devA, 'lianfang/v1/devices/+/status', false],
    ['device A', devA, 'somewhere/else', false],
    ['officer', officer1, topics.deviceStatus(devA.deviceId), false],
    ['officer', officer1, topics.stationActions('PS1'), false],
    ['admin', admin1, topics.stationActions('PS1'), false],
    ['installer', installer, topics.deviceStatus(devA.deviceId), false],
  ];
  for (const [who, p, topic, ok] of rows) t.equal(canSetWill(p, topic), ok, `${who} ${ok ? 'may' : 'may not'} set a will on ${topic}`);
});

t.test('deliveryRecipient: which recipient a PUBACK counts for', async (t) => {
  const rows: [who: string, p: Principal, topic: string, want: Recipient | null][] = [
    ['device A on its shop alerts', devA, topics.shopAlerts('S1'), { kind: 'shop', id: 'S1' }],
    ['device A2 on its shop alerts', devA2, topics.shopAlerts('S1'), { kind: 'shop', id: 'S1' }],
    ['device B on its shop alerts', devB, topics.shopAlerts('S2'), { kind: 'shop', id: 'S2' }],
    ["device A on another shop's alerts", devA, topics.shopAlerts('S2'), null],
    ['device A on its own commands', devA, topics.deviceCommands(devA.deviceId), { kind: 'device', id: devA.deviceId }],
    ["device A on device A2's commands", devA, topics.deviceCommands(devA2.deviceId), null],
    ["officer PS1 on device A's commands", officer1, topics.deviceCommands(devA.deviceId), null],
    ['device A on station alarms', devA, topics.stationAlarms('PS1'), null],
    ['officer PS1 on PS1 alarms', officer1, topics.stationAlarms('PS1'), { kind: 'station', id: 'PS1' }],
    ['officer PS1 on PS2 alarms', officer1, topics.stationAlarms('PS2'), null],
    ['officer PS1 on PS1 errors', officer1, topics.stationErrors('PS1'), null],
    // a console's faults are outbox rows of their own kind (gateway/faults/fault-store.ts)
    ['officer PS1 on PS1 faults', officer1, topics.stationFaults('PS1'), { kind: 'fault', id: 'PS1' }],
    ['officer PS1 on PS2 faults', officer1, topics.stationFaults('PS2'), null],
    ['admin PS1 on PS1 faults', admin1, topics.stationFaults('PS1'), null],
    ['officer PS1 on shop alerts', officer1, topics.shopAlerts('S1'), null],
    // an admin may watch, but only an officer's console counts as the station having it
    ['admin PS1 on PS1 alarms', admin1, topics.stationAlarms('PS1'), null],
    ['installer on PS1 alarms', installer, topics.stationAlarms('PS1'), null],
    ['device A on a wildcard', devA, 'lianfang/v1/shops/+/alerts', null],
  ];
  for (const [what, p, topic, want] of rows) t.same(deliveryRecipient(p, topic), want, what);
});
