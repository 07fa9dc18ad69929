/**
 * `lianfang bus scan` on a port no running gateway holds: open the bus, ask every address in the
 * range, close it. (With a gateway running, the scan goes through its admin channel and runs
 * between its polls, since one port has one master.)
 */
import type { Bus } from '../gateway/registry/buses.js';
import { createLogger } from '../gateway/logger.js';
import { Counters } from '../gateway/metrics.js';
import type { ScanHit, ScanOptions } from './bridge.js';
import { closeModbusClient, openModbusClient, scanModbus } from './modbus-bridge.js';
import { SerialLine, scanSerial } from './serial-bridge.js';

export async function scanBusDirect(bus: Bus, opts: ScanOptions, known: Map<number, string>): Promise<ScanHit[]> {
  if (bus.kind === 'serial') {
    const line = new SerialLine(bus, createLogger(process.env.LF_LOG_LEVEL ?? 'warn'), new Counters());
    await line.open();
    try {
      return await scanSerial(line, opts, known);
    } finally {
      await line.close();
    }
  }
  const client = await openModbusClient(bus, opts.timeoutMs);
  try {
    return await scanModbus(client, opts, opts.timeoutMs, known);
  } finally {
    await closeModbusClient(client);
  }
}
