/**
 * What the fault tests share: the gateway in process on the manual clock (supervision's checks run
 * on it) with a short-enough MQTT fault time, the station's officer console as a real MQTT client
 * whose every fault message is checked against the contract, and the street's MQTT keypads.
 */
import type { Test } from 'tap';
import mqtt from 'mqtt';
import { HELPER_ENV, query } from './gateway.js';
import type { StreetFile } from '../../simulators/street.js';
import { SimKeypad } from '../../simulators/mqtt-devices.js';
import { Gateway } from '../../gateway/controller.js';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../gateway/logger.js';
import type { ManualClock } from '../../gateway/clock.js';
import { topics } from '../../firmware-contracts/mqtt/topics.js';
import { validators, type ConsoleFault } from '../../firmware-contracts/mqtt/payloads.js';

export const FAULT_AFTER_MS = 90_000;

export async function startGateway(t: Test, data: string, clock: ManualClock): Promise<Gateway> {
  const config = loadConfig({
    env: HELPER_ENV,
    overrides: {
      dataDir: data,
      log: { level: 'silent' },
      mqtt: { host: '127.0.0.1', port: 0, wsPort: 0 },
      http: { host: '127.0.0.1', port: 0 },
      supervision: { mqttFaultAfterMs: FAULT_AFTER_MS, checkIntervalMs: 1_000 },
    },
  });
  const gw = await Gateway.start({ config, clock, log: createLogger('silent') });
  t.teardown(() => gw.stop());
  return gw;
}

export const url = (gw: Gateway) => `mqtt://127.0.0.1:${gw.ports().mqtt}`;

/** The station's officer console, subscribed to its faults topic; every message checked against the contract. */
export async function faultConsole(t: Test, gw: Gateway, street: StreetFile, name = 'faults'): Promise<{ got: ConsoleFault[]; close: () => Promise<void> }> {
  const client = await mqtt.connectAsync(url(gw), { clientId: `${street.officer.username}:${name}`, username: street.officer.username, password: street.officer.password, reconnectPeriod: 0 });
  const got: ConsoleFault[] = [];
  client.on('message', (_topic, payload) => {
    const msg = JSON.parse(payload.toString('utf8')) as unknown;
    if (!validators.consoleFault.check(msg)) t.fail(`a fault message outside the contract: ${validators.consoleFault.firstError(msg)}`);
    got.push(msg as ConsoleFault);
  });
  await client.subscribeAsync(topics.stationFaults(street.stationId), { qos: 1 });
  const close = () => client.endAsync(true);
  t.teardown(close);
  return { got, close };
}

export const keypad = (street: StreetFile, i: number) => new SimKeypad(street.shops[i]!.deviceId, street.shops[i]!.shopId, street.shops[i]!.creds);
export const of = (got: ConsoleFault[], deviceId: string) => got.filter((f) => f.deviceId === deviceId);
export const undelivered = (data: string) =>
  query<{ n: number }>(data, "SELECT count(*) AS n FROM outbox WHERE recipient_kind = 'fault' AND delivered_at IS NULL AND superseded = 0")[0]!.n;

