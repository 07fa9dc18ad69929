/**
 * The running gateway's side of `lianfang device reset-counter ID` (admin op `reset-counter`): the
 * reset (gateway/ingest/sequence.ts `resetDeviceCounter`, the one owner of a device's mark) runs in
 * the writer, so it is ordered with the device's events, and what the gateway holds in memory
 * follows it in the same item: the mark on the device record (which the serial bridge's keypad
 * shares), the open fault; after the commit, the keys the keypad had half typed.
 */
import type { GroupCommitWriter } from './writer.js';
import type { AlarmEngine } from '../alarm/engine.js';
import { resetDeviceCounter, type CounterResetDone } from './sequence.js';
import type { RegistryCache } from '../registry/registry-cache.js';
import type { Supervisor } from '../supervision.js';
import type { FaultStore } from '../faults/fault-store.js';
import type { Clock } from '../clock.js';
import { iso } from '../clock.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../logger.js';
import { lfError } from '../errors.js';

export interface CounterResetContext {
  db: Db;
  writer: GroupCommitWriter;
  registry: RegistryCache;
  engine: AlarmEngine;
  supervisor: Supervisor;
  faults: FaultStore;
  clock: Clock;
  log: Logger;
}

/** Who asked, as the audit names it: `cli:<os user>` from the CLI; anything else is cut short. */
const actorOf = (v: unknown): string => (typeof v === 'string' && /^[A-Za-z0-9_.:@-]{1,100}$/.test(v) ? v : 'cli');

export async function resetCounter(ctx: CounterResetContext, deviceId: unknown, actor: unknown): Promise<CounterResetDone> {
  if (typeof deviceId !== 'string' || deviceId === '') throw lfError('LF_ERR_INVALID_ARGUMENT', 'deviceId', 'the id of a registered device');
  const done = await ctx.writer.run((fx) => {
    const now = ctx.clock.now();
    const result = resetDeviceCounter(ctx.db, deviceId, actorOf(actor), iso(now), { fx, device: ctx.registry.devices.get(deviceId), faults: ctx.faults });
    ctx.supervisor.forgetCounterReset(fx, deviceId, now);
    return result;
  }, 'reset-counter');
  // What was half typed belongs to the old sequence.
  ctx.engine.forgetKeys(deviceId);
  ctx.log.info({ deviceId, previous: done.previous, faultsCleared: done.faultsCleared }, 'device counter reset by the installer: its next event is accepted in any sequence');
  return done;
}
