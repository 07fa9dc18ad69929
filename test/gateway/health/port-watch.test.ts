/**
 * A bus's port as a fault (gateway/health/port-watch.ts): raised after `failAfter` failed opens in
 * a row, with the error, and said again with that detail at each further failure; cleared when the
 * port opens; the first open of a run clears a
 * fault the last run may have left; a released bus's fault clears.
 */
import t from 'tap';
import { createLogger } from '../../../gateway/logger.js';
import { PortFaults } from '../../../gateway/health/port-watch.js';
import { RecordingGatewaySink } from '../../helpers/gateway-faults.js';

const enoent = () => Object.assign(new Error('Error: No such file or directory, cannot open /dev/ttyX'), { code: 'ENOENT' });

t.test('raised after failAfter failures in a row, cleared when the port opens, raised again on a new episode', async (t) => {
  const sink = new RecordingGatewaySink();
  const ports = new PortFaults({ sink, log: createLogger('silent'), failAfter: 3 });
  const w = ports.watch('B1', '/dev/ttyX @ 9600 8N1');
  w.openFailed(1, enoent());
  w.openFailed(2, enoent());
  t.same(sink.calls, [], 'two failures: not yet');
  w.openFailed(3, enoent());
  t.same(sink.calls, [{ op: 'raise', kind: 'port-failed', subject: 'bus:B1', detail: { busId: 'B1', where: '/dev/ttyX @ 9600 8N1', failures: 3, error: enoent().message, code: 'ENOENT' } }]);
  w.openFailed(4, new Error('another message'));
  w.openFailed(40, enoent());
  t.same(sink.calls.slice(1), [sink.calls[0], sink.calls[0]], 'each further failure says it again with the detail it was raised with (no new rev; stored if the first could not be)');
  w.opened();
  t.same(sink.ops().slice(3), ['clear port-failed bus:B1']);
  w.opened();
  t.equal(sink.calls.length, 4, 'a reopen with nothing raised says nothing');
  w.openFailed(1, new Error('Cannot lock port'));
  w.openFailed(2, new Error('Cannot lock port'));
  w.openFailed(3, new Error('Cannot lock port'));
  t.same(sink.calls[4], { op: 'raise', kind: 'port-failed', subject: 'bus:B1', detail: { busId: 'B1', where: '/dev/ttyX @ 9600 8N1', failures: 3, error: 'Cannot lock port' } }, 'an error without a code');
  ports.released('B1');
  t.same(sink.ops().slice(5), ['clear port-failed bus:B1'], 'a bus removed while failing: its fault has no cause left');
});

t.test('the first open of a run clears (a fault left by the last run); a released bus without a fault says nothing', async (t) => {
  const sink = new RecordingGatewaySink();
  const ports = new PortFaults({ sink, log: createLogger('silent'), failAfter: 1 });
  const w = ports.watch('M1', '127.0.0.1:502');
  w.opened();
  t.same(sink.ops(), ['clear port-failed bus:M1']);
  ports.released('M1');
  t.equal(sink.calls.length, 1);
  const once = ports.watch('M2', '127.0.0.1:503');
  once.openFailed(1, Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:503'), { code: 'ECONNREFUSED' }));
  t.same(sink.ops().slice(1), ['raise port-failed bus:M2'], 'failAfter 1: the first failure');
});

t.test('a sink that throws is logged, never thrown into the bridge\'s loop', async (t) => {
  const sink = { raiseGateway: () => { throw new Error('store gone'); }, clearGateway: () => { throw new Error('store gone'); } };
  const w = new PortFaults({ sink, log: createLogger('silent'), failAfter: 1 }).watch('B9', '/dev/ttyZ');
  t.doesNotThrow(() => w.openFailed(1, enoent()));
  t.doesNotThrow(() => w.opened());
});

t.test('a fault the last run left: cleared when its bus is released before this run knew its port, and swept at start when no bus of this run holds it', async (t) => {
  const sink = new RecordingGatewaySink();
  const ports = new PortFaults({ sink, log: createLogger('silent'), failAfter: 3 });
  ports.watch('B1', '/dev/ttyA');
  ports.released('B1');
  t.same(sink.ops(), ['clear port-failed bus:B1'], 'removed before its first open: whatever the last run left is over');
  const open = [
    { kind: 'port-failed', subject: 'bus:GONE' },
    { kind: 'port-failed', subject: 'bus:HELD' },
    { kind: 'disk-low', subject: 'disk:/data' },
    { kind: 'silent', subject: null },
  ];
  ports.sweep(open, (busId) => busId === 'HELD');
  t.same(sink.ops().slice(1), ['clear port-failed bus:GONE'], 'only the port fault of a bus not held; a held bus reports for itself');
});
