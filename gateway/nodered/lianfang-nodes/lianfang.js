'use strict';
/**
 * The Lianfang nodes of the gateway's embedded Node-RED (docs/node-red.md): alarms, device events and
 * faults into a flow; device commands and alarm-timeline notes out of it. Every node talks to the
 * gateway through the bridge the child process puts in `RED.settings.lianfang`
 * (gateway/nodered/protocol.ts `NodeBridge`), never through a second MQTT login. Loaded outside the
 * gateway (no bridge), each node shows a red "no gateway" status and does nothing.
 *
 * A duress alarm reaches a flow with `msg.duress` true and nothing on a node's status says so: the
 * editor may be open where the shopkeeper's robber can see it.
 */

/** @typedef {import('../protocol').NodeBridge} NodeBridge */
/** @typedef {import('../protocol').FlowMessage} FlowMessage */

const ALARM_KINDS = ['panic', 'duress', 'help', 'intrusion'];
const ALARM_STATES = ['raised', 'acknowledged', 'dispatched', 'closed', 'cancelled'];
const COMMANDS = ['buzzer', 'sounder', 'display', 'led'];
const LED_COLOURS = ['off', 'red', 'green', 'amber'];
/** The most fault ids a `lianfang-fault-in` node remembers the state of (the oldest are forgotten first). */
const FAULT_MEMORY = 10000;

const NO_GATEWAY = { fill: 'red', shape: 'ring', text: 'no gateway / 未连接网关' };
const CONNECTED = { fill: 'green', shape: 'dot', text: 'connected / 已连接' };

/**
 * The items of a comma list (a node's text field) or of an array; blank means none.
 * @param {unknown} value
 * @returns {string[]}
 */
function list(value) {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : [];
  return items.map((s) => String(s).trim()).filter((s) => s !== '');
}

/**
 * The ticked names among `allowed` (a comma list as the editor saves it); none ticked = all pass.
 * @param {unknown} value
 * @param {string[]} allowed
 * @returns {Set<string> | null} null when everything passes
 */
function tickedSet(value, allowed) {
  const ticked = list(value).filter((s) => allowed.includes(s));
  return ticked.length === 0 ? null : new Set(ticked);
}

/**
 * The comma list as a set, null when blank (everything passes).
 * @param {unknown} value
 * @returns {Set<string> | null}
 */
function listSet(value) {
  const items = list(value);
  return items.length === 0 ? null : new Set(items);
}

/**
 * The flow (tab) a node is on, by name: what the gateway audits as `flow:<name>`.
 * @param {any} node
 * @returns {string}
 */
function flowName(node) {
  const flow = node._flow;
  const name = flow && typeof flow.getSetting === 'function' ? flow.getSetting('NR_FLOW_NAME') : undefined;
  return typeof name === 'string' && name !== '' ? name : String(node.z || 'unknown');
}

/**
 * The bridge, or null after marking the node as not connected.
 * @param {any} RED
 * @param {any} node
 * @returns {NodeBridge | null}
 */
function bridgeOf(RED, node) {
  const bridge = RED.settings.lianfang;
  if (!bridge || typeof bridge.on !== 'function' || typeof bridge.call !== 'function') {
    node.status(NO_GATEWAY);
    return null;
  }
  return bridge;
}

/**
 * Wires an in-node to one kind of flow message: `toMsg` returns the message to send, or null to drop
 * it. The listener goes on `close`; the status counts what was sent.
 * @param {any} RED
 * @param {any} node
 * @param {'alarm' | 'event' | 'fault'} kind
 * @param {(m: any) => object | null} toMsg
 */
function listen(RED, node, kind, toMsg) {
  const bridge = bridgeOf(RED, node);
  if (!bridge) return;
  let sent = 0;
  node.status(CONNECTED);
  const off = bridge.on(kind, (m) => {
    if (m.kind !== kind) return;
    let msg;
    try {
      msg = toMsg(m);
    } catch (err) {
      node.status({ fill: 'red', shape: 'dot', text: 'error / 出错' });
      node.error(err);
      return;
    }
    if (!msg) return;
    sent += 1;
    node.status({ fill: 'green', shape: 'dot', text: `${sent} sent / 已发 ${sent}` });
    node.send(msg);
  });
  node.on('close', () => off());
}

/**
 * Wires an out-node's input to one bridge call: `argsOf` builds the call's arguments from the message
 * (throwing an Error with a `code` when it cannot). The result goes on as `msg.payload`; a refusal is
 * `done(err)` so that a catch node sees it, with the LF_ERR_… code on the status.
 * @param {any} RED
 * @param {any} node
 * @param {'command' | 'note'} op
 * @param {(msg: any) => Record<string, unknown>} argsOf
 */
function callOnInput(RED, node, op, argsOf) {
  const bridge = bridgeOf(RED, node);
  if (!bridge) return;
  node.status({});
  node.on('input', (msg, send, done) => {
    let args;
    try {
      args = argsOf(msg);
    } catch (err) {
      fail(node, err, done);
      return;
    }
    bridge.call(op, args, flowName(node)).then(
      (result) => {
        node.status({ fill: 'green', shape: 'dot', text: 'sent / 已发送' });
        msg.payload = result;
        send(msg);
        done();
      },
      (err) => fail(node, err, done),
    );
  });
}

/**
 * @param {any} node
 * @param {any} err
 * @param {(err?: Error) => void} done
 */
function fail(node, err, done) {
  const error = err instanceof Error ? err : new Error(String(err));
  node.status({ fill: 'red', shape: 'dot', text: error.code || 'error / 出错' });
  done(error);
}

/**
 * An Error with the gateway's code for a bad argument (a catch node reads it as `msg.error.code`).
 * @param {string} message
 * @returns {Error & {code: string}}
 */
function invalid(message) {
  const err = /** @type {Error & {code: string}} */ (new Error(message));
  err.code = 'LF_ERR_INVALID_ARGUMENT';
  return err;
}

/**
 * One device command from a node's config or a message, with only the fields it names.
 * @param {any} c
 * @returns {Record<string, unknown>}
 */
function deviceCommand(c) {
  if (!c || typeof c !== 'object' || !COMMANDS.includes(c.command)) {
    throw invalid(`a command is one of ${COMMANDS.join(', ')}`);
  }
  /** @type {Record<string, unknown>} */
  const out = { command: c.command };
  if (c.command === 'buzzer' || c.command === 'sounder') {
    out.on = c.on === true || c.on === 'true';
    if (c.seconds !== undefined && c.seconds !== '') {
      const seconds = Number(c.seconds);
      if (!Number.isInteger(seconds) || seconds < 0 || seconds > 65535) throw invalid('seconds is a whole number from 0 to 65535');
      out.seconds = seconds;
    }
  } else if (c.command === 'display') {
    out.text = c.text === undefined ? '' : String(c.text);
    if (c.line2 !== undefined && c.line2 !== '') out.line2 = String(c.line2);
  } else {
    if (!LED_COLOURS.includes(c.colour)) throw invalid(`an LED colour is one of ${LED_COLOURS.join(', ')}`);
    out.colour = c.colour;
    out.blink = c.blink === true || c.blink === 'true';
  }
  return out;
}

module.exports = function (RED) {
  /** `lianfang-alarm-in`: every new rev of an alarm, filtered by station or compound, kind and state. */
  function AlarmIn(config) {
    RED.nodes.createNode(this, config);
    const stations = listSet(config.stations);
    const kinds = tickedSet(config.kinds, ALARM_KINDS);
    const states = tickedSet(config.states, ALARM_STATES);
    const includeTests = config.includeTests === true;
    listen(RED, this, 'alarm', ({ alarm, shop }) => {
      if (alarm.test === true && !includeTests) return null;
      if (stations && !stations.has(alarm.stationId) && !stations.has(alarm.compoundId)) return null;
      // A duress PIN makes a panic alarm a duress one: "duress" ticked matches it by the flag.
      if (kinds && !kinds.has(alarm.kind) && !(alarm.duress === true && kinds.has('duress'))) return null;
      if (states && !states.has(alarm.state)) return null;
      return {
        topic: `lianfang/alarms/${alarm.state}`,
        payload: alarm,
        shop,
        alarmId: alarm.alarmId,
        duress: alarm.duress === true,
        test: alarm.test === true,
      };
    });
  }
  RED.nodes.registerType('lianfang-alarm-in', AlarmIn);

  /** `lianfang-event-in`: device events (without a keypad's keys), filtered by type and shop. */
  function EventIn(config) {
    RED.nodes.createNode(this, config);
    const types = listSet(config.types);
    const shops = listSet(config.shops);
    const includeTests = config.includeTests === true;
    listen(RED, this, 'event', ({ event, shop }) => {
      if (event.test === true && !includeTests) return null;
      if (types && !types.has(event.type)) return null;
      if (shops && !shops.has(event.shopId)) return null;
      return { topic: `lianfang/events/${event.type}`, payload: event, shop };
    });
  }
  RED.nodes.registerType('lianfang-event-in', EventIn);

  /** `lianfang-fault-in`: faults raised and cleared ("state"), or every rev, ticket changes too ("all"). */
  function FaultIn(config) {
    RED.nodes.createNode(this, config);
    const faults = listSet(config.faults);
    const everyRev = config.changes === 'all';
    /** @type {Map<string, string>} faultId → the last state passed on */
    const last = new Map();
    listen(RED, this, 'fault', ({ fault }) => {
      if (faults && !faults.has(fault.fault)) return null;
      if (!everyRev) {
        if (last.get(fault.faultId) === fault.state) return null;
        last.delete(fault.faultId);
        last.set(fault.faultId, fault.state);
        if (last.size > FAULT_MEMORY) last.delete(last.keys().next().value);
      }
      return { topic: `lianfang/faults/${fault.state}`, payload: fault };
    });
  }
  RED.nodes.registerType('lianfang-fault-in', FaultIn);

  /** `lianfang-command-out`: a buzzer, sounder, display or LED command to a device or every device of a shop. */
  function CommandOut(config) {
    RED.nodes.createNode(this, config);
    callOnInput(RED, this, 'command', (msg) => {
      const deviceId = config.deviceId || msg.deviceId;
      const shopId = config.deviceId ? undefined : config.shopId || msg.shopId;
      if (typeof deviceId === 'string' && deviceId !== '') {
        return { deviceId, commands: commandsOf(msg) };
      }
      if (typeof shopId === 'string' && shopId !== '') return { shopId, commands: commandsOf(msg) };
      throw invalid('no target: set a device or a shop, or msg.deviceId / msg.shopId');
    });

    /** @returns {Record<string, unknown>[]} */
    function commandsOf(msg) {
      if (config.command) return [deviceCommand(config)];
      const given = Array.isArray(msg.payload) ? msg.payload : [msg.payload];
      if (given.length === 0) throw invalid('msg.payload has no command');
      return given.map(deviceCommand);
    }
  }
  RED.nodes.registerType('lianfang-command-out', CommandOut);

  /** `lianfang-alarm-note`: a note on an alarm's timeline (a flow never acknowledges, takes or closes). */
  function AlarmNote(config) {
    RED.nodes.createNode(this, config);
    callOnInput(RED, this, 'note', (msg) => {
      const payload = msg.payload;
      const alarmId = msg.alarmId || (payload && typeof payload === 'object' ? payload.alarmId : undefined);
      if (typeof alarmId !== 'string' || alarmId === '') throw invalid('no alarm: set msg.alarmId');
      const text = config.note || msg.note || (typeof payload === 'string' ? payload : '');
      if (typeof text !== 'string' || text.trim() === '') throw invalid('no note: set the node\'s note, msg.note or a text msg.payload');
      return { alarmId, text };
    });
  }
  RED.nodes.registerType('lianfang-alarm-note', AlarmNote);
};
