/**
 * `lianfang bus scan` on a port no running gateway holds: open the bus, ask every address in the
 * range, close it. (With a gateway running, the scan goes through its admin channel and runs
 * between its polls, since one port has one master.) The caller gives the clock and the log.
 */
import type { BridgeClock, BridgeLog, BusPort, ScanHit, ScanOptions } from './bridge.js';
import { closeModbusClient, openModbusClient, scanModbus } from './modbus-bridge.js';
import { SerialLine, scanSerial } from './serial-bridge.js';

export async function scanBusDirect(port: BusPort, opts: ScanOptions, known: Map<number, string>, env: { clock: BridgeClock; log: BridgeLog }): Promise<ScanHit[]> {
  if (port.kind === 'serial') {
    // Nobody reads the dropped-frame counts of a one-off scan.
    const line = new SerialLine(port, env.log, { inc: () => {} }, env.clock);
    await line.open();
    try {
      return await scanSerial(line, opts, known);
    } finally {
      await line.close();
    }
  }
  const client = await openModbusClient(port, env.clock, opts.timeoutMs);
  try {
    return await scanModbus(client, opts, opts.timeoutMs, known);
  } finally {
    await closeModbusClient(client, env.clock);
  }
}
