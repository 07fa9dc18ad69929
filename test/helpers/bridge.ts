/**
 * A bridge's narrow context (devices/bridge.ts BridgeContext) made of fakes that record: the log,
 * counters, link watch, deliveries and, unless the test gives its own, the ingest. Used by the
 * tests that drive a bus driver directly on a ManualClock, without a gateway.
 */
import { loadConfig } from '../../config/load.js';
import type { BridgeContext, BridgeLog, WiredDevice } from '../../devices/bridge.js';
import type { DeviceEvent } from '../../firmware-contracts/mqtt/payloads.js';
import { HELPER_ENV } from './gateway.js';

export interface Fakes {
  ctx: BridgeContext;
  counts: Map<string, number>;
  logs: { level: string; msg: string; fields: object }[];
  events: { deviceId: string; event: DeviceEvent }[];
  seen: string[];
  watched: Set<string>;
  delivered: string[];
}

export function fakes(clock: { now(): number; setTimer(ms: number, fn: () => void): { cancel(): void } }, overrides: Parameters<typeof loadConfig>[0] = {}): Fakes {
  const counts = new Map<string, number>();
  const logs: Fakes['logs'] = [];
  const events: Fakes['events'] = [];
  const seen: string[] = [];
  const watched = new Set<string>();
  const delivered: string[] = [];
  const log: BridgeLog = {
    debug: (fields, msg = '') => logs.push({ level: 'debug', msg, fields }),
    info: (fields, msg = '') => logs.push({ level: 'info', msg, fields }),
    warn: (fields, msg = '') => logs.push({ level: 'warn', msg, fields }),
    error: (fields, msg = '') => logs.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  const config = loadConfig({ env: HELPER_ENV, ...overrides });
  const ctx: BridgeContext = {
    log,
    clock,
    counters: { inc: (name, n = 1) => counts.set(name, (counts.get(name) ?? 0) + n) },
    latencies: { recordMs: () => {} },
    config,
    link: { watch: (id) => watched.add(id), unwatch: (id) => watched.delete(id), seen: (id) => seen.push(id) },
    ingest: async (deviceId, event) => {
      events.push({ deviceId, event });
      return { outcome: { status: 'stored' }, committedAt: performance.now() };
    },
    nextCommandBoot: () => 7,
    nextModuleBoot: (mark) => (mark ?? 4000) + 242,
    delivered: (shopId, alarmId, rev, deviceId) => delivered.push(`${shopId}/${alarmId}/${rev}/${deviceId}`),
  };
  return { ctx, counts, logs, events, seen, watched, delivered };
}

export const moduleRecord = (unit: number, mark: number | null = null): WiredDevice => ({
  id: `W01.io-module.${unit}`,
  shopId: 'W01',
  type: 'io-module',
  address: unit,
  model: null,
  macKey: null,
  mark: () => ({ boot: mark, seq: null }),
});
