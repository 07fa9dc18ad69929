/**
 * What flows may do to the street (gateway/nodered/flow-calls.ts), through the real Lianfang nodes:
 * `lianfang-command-out` reaches a shop's MQTT keypad as a command and is audited as
 * `flow:<flow name>`; for a shop with an open duress alarm it is refused (a light or a siren would
 * betray the shopkeeper) and the flow's catch node sees why; `lianfang-alarm-note` puts a note on
 * the alarm's timeline; a duress alarm reaches the flow marked as duress; so does the
 * nobody-on-duty fault the alarm raised.
 */
import t from 'tap';
import { cli, connectStreet, query, until } from '../../helpers/gateway.js';
import { INSTALLER, deploy, provisionNodeRedStreet, receiver, startWithNodeRed, token } from '../../helpers/node-red.js';

const PIN = '24680864';
const DURESS = '13577531';
const TAB = 'Lights at the shop';

t.test('command-out lights the shop\'s keypad, is refused under duress; alarm-note writes the timeline', async (t) => {
  const { data, street } = await provisionNodeRedStreet(t, 3);
  const origin = street.shops[0]!.shopId;
  const pin = await cli(['shop', 'pin', origin, '--data', data], { LF_PIN: PIN, LF_DURESS_PIN: DURESS });
  t.equal(pin.code, 0, pin.stderr);
  const hook = await receiver(t);
  // Nobody signs on to a shift here: every alarm also raises a nobody-on-duty fault, which flows hear.
  const gw = await startWithNodeRed(t, data, { LF_CONSOLE_NOBODY_ON_DUTY_FAULT: 'true' });
  const { keypads, console: officer } = await connectStreet(t, street, gw.mqttUrl);
  const z = 'lf7f000000000000';
  const flows = [
    { id: z, type: 'tab', label: TAB },
    { id: 'lf7f000000000001', type: 'lianfang-alarm-in', z, wires: [['lf7f000000000002', 'lf7f000000000007', 'lf7f000000000009']] },
    {
      id: 'lf7f000000000002',
      type: 'function',
      z,
      func: "msg.shopId = msg.payload.shopId; msg.rev = msg.payload.rev; msg.payload = { command: 'led', colour: 'amber', blink: true }; return msg;",
      wires: [['lf7f000000000003']],
    },
    { id: 'lf7f000000000003', type: 'lianfang-command-out', z, wires: [['lf7f000000000004']] },
    { id: 'lf7f000000000004', type: 'http request', z, method: 'POST', ret: 'txt', url: `${hook.url}/sent`, wires: [[]] },
    { id: 'lf7f000000000005', type: 'catch', z, scope: ['lf7f000000000003'], uncaught: false, wires: [['lf7f000000000006']] },
    { id: 'lf7f000000000006', type: 'function', z, func: 'msg.payload = { error: String(msg.error && msg.error.message), rev: msg.rev }; return msg;', wires: [['lf7f00000000000a']] },
    { id: 'lf7f00000000000a', type: 'http request', z, method: 'POST', ret: 'txt', url: `${hook.url}/refused`, wires: [[]] },
    { id: 'lf7f000000000007', type: 'function', z, func: 'if (msg.payload.rev !== 1) return null; msg.note = "Seen by the lights flow / 灯光流程已处理"; return msg;', wires: [['lf7f000000000008']] },
    { id: 'lf7f000000000008', type: 'lianfang-alarm-note', z, wires: [[]] },
    { id: 'lf7f000000000009', type: 'function', z, func: 'msg.payload = { alarmId: msg.alarmId, rev: msg.payload.rev, duress: msg.duress }; return msg;', wires: [['lf7f00000000000b']] },
    { id: 'lf7f00000000000b', type: 'http request', z, method: 'POST', ret: 'txt', url: `${hook.url}/seen`, wires: [[]] },
    { id: 'lf7f00000000000c', type: 'lianfang-fault-in', z, faults: 'nobody-on-duty', changes: 'state', wires: [['lf7f00000000000d']] },
    { id: 'lf7f00000000000d', type: 'http request', z, method: 'POST', ret: 'txt', url: `${hook.url}/fault`, wires: [[]] },
  ];
  t.equal((await deploy(gw, await token(gw, INSTALLER), flows)).status, 204, 'deployed');

  const kp = keypads.get(origin)!;
  await kp.press('9#');
  const alarm = await officer.waitFor((a) => a.shopId === origin && a.state === 'raised');
  const led = await kp.waitForCommand((c) => c.command === 'led' && c.colour === 'amber', 30_000);
  t.match(led, { command: 'led', colour: 'amber', blink: true }, 'the shop\'s keypad got the flow\'s command');
  t.notOk((led as { alarmId?: string }).alarmId, 'a flow\'s command speaks for no alarm');
  const sent = await hook.next((r) => r.path === '/sent');
  t.match(JSON.parse(sent.body), { devices: [street.shops[0]!.deviceId] }, 'command-out passed on which devices it told');
  const audited = await until('the command audited', async () => query<{ actor: string; detail: string }>(data, "SELECT actor, detail FROM audit WHERE action = 'flow-command'"), (r) => r.length >= 1);
  t.equal(audited[0]!.actor, `flow:${TAB}`, 'audited as the flow');

  const fault = JSON.parse((await hook.next((r) => r.path === '/fault', 30_000)).body) as { fault: string; state: string };
  t.match(fault, { fault: 'nobody-on-duty', state: 'raised' }, 'the nobody-on-duty fault reached the flow');

  const notes = await until('the note', async () => query<{ actor: string; detail: string }>(data, "SELECT actor, detail FROM audit WHERE action = 'note' AND alarm_id = ?", alarm.alarmId), (r) => r.length === 1);
  t.equal(notes[0]!.actor, `flow:${TAB}`);
  t.equal(JSON.parse(notes[0]!.detail).note, 'Seen by the lights flow / 灯光流程已处理', 'the note is on the alarm\'s timeline');

  // The duress PIN: the alarm seems cancelled at the counter; the flow hears duress and may not light the shop.
  await kp.press(`*${DURESS}#`);
  await officer.waitFor((a) => a.alarmId === alarm.alarmId && a.duress === true);
  const seen = await hook.next((r) => r.path === '/seen' && JSON.parse(r.body).duress === true, 30_000);
  t.equal(JSON.parse(seen.body).alarmId, alarm.alarmId, 'the duress alarm reached the flow marked as duress');
  const refused = await hook.next((r) => r.path === '/refused', 30_000);
  t.match(JSON.parse(refused.body).error, /duress/, 'command-out refused, and the flow\'s catch node heard why');
  t.equal(query(data, "SELECT 1 FROM audit WHERE action = 'flow-command'").length, audited.length, 'nothing more was sent to the shop');
  t.ok((await gw.health()).counters['nodered.refused.LF_ERR_DURESS_SILENT'] >= 1, 'the refusal is counted');
});
