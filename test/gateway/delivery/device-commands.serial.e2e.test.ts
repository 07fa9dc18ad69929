/**
 * A wired keypad's answer to an entry (gateway/delivery/device-commands.ts → devices/wired.ts →
 * devices/serial-bridge.ts keypadCommand): the gateway in process, master of a real pty line, the
 * serial keypad simulator on the other end. The sink is called as the engine calls it, inside a
 * writer item; the keypad shows its LED and texts from the frames it confirmed on the wire.
 */
import t from 'tap';
import { HELPER_ENV, tempDataDir } from '../../helpers/gateway.js';
import { provisionRow, addWiredDevice, eventually } from '../../helpers/wired.js';
import { openPtyPair } from '../../../simulators/wire/pty-pair.js';
import { SerialKeypadSim } from '../../../simulators/serial-keypad.js';
import { Gateway } from '../../../gateway/controller.js';
import { loadConfig } from '../../../config/load.js';
import { createLogger } from '../../../gateway/logger.js';
import type { KeypadFeedback } from '../../../gateway/delivery/device-commands.js';

t.test("a serial keypad shows the LED after 9#, and each PIN answer's text", async (t) => {
  const data = tempDataDir(t);
  await provisionRow(data, 2);
  const line = await openPtyPair();
  t.teardown(() => line.close());
  const { deviceId, key } = addWiredDevice(data, { shopId: 'W00', type: 'keypad', transport: 'serial', port: line.a, busAddress: 3 });
  const config = loadConfig({
    env: HELPER_ENV,
    overrides: { dataDir: data, mqtt: { host: '127.0.0.1', port: 0, wsPort: 0 }, http: { host: '127.0.0.1', port: 0 }, serial: { pollPauseMs: 5 } },
  });
  const gw = await Gateway.start({ config, log: createLogger('silent') });
  t.teardown(() => gw.stop());
  const sim = new SerialKeypadSim({ path: line.b, keypads: [{ address: 3, key: key! }] });
  await sim.start();
  t.teardown(() => sim.close());
  await sim.waitFor(() => sim.stats.polls > 0, 10_000);

  const answer = (what: KeypadFeedback) => gw.writer.run((fx) => gw.commands.feedback(fx, gw.clock.now(), gw.registry.devices.get(deviceId)!, what));

  await answer('raised');
  await sim.waitFor(() => sim.state(3).led.colour === 'green', 10_000);
  t.same(sim.state(3).led, { colour: 'green', blink: true }, 'the LED blinks green');
  t.same(sim.state(3).buzzer, { on: false, seconds: 0 }, 'no buzzer at the counter');
  t.same(sim.state(3).display, ['', ''], 'no text');

  await answer('wrong-pin');
  await eventually(() => sim.state(3).display[1] === 'Wrong PIN', 'the wrong-PIN text', 10_000);
  t.same(sim.state(3).display, ['密码错误', 'Wrong PIN']);

  await answer('cancelled');
  await eventually(() => sim.state(3).display[1] === 'Cancelled' && sim.state(3).led.colour === 'off', 'the cancel text and the LED off', 10_000);
  t.same(sim.state(3).display, ['已取消', 'Cancelled']);

  await answer('locked-out');
  await eventually(() => sim.state(3).display[1] === 'PIN locked', 'the lock-out text', 10_000);
  t.same(sim.state(3).display, ['密码已锁定', 'PIN locked']);
  t.notOk(sim.state(3).commands.some((c) => c.type === 'BUZZER'), 'never a buzzer frame');
});
