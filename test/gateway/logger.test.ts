/**
 * The logger's second line of defence: a field that could carry a secret is redacted in every line
 * it writes, to stdout and to the log file alike (both get the same serialized line).
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../../gateway/logger.js';

t.test('secret fields are redacted, at the top and one level down', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const log = createLogger('info', sink);
  const secrets = { password: 'pw-1', secret: 's-1', token: 't-1', macKey: 'mk-1', keys: '*2468#', pin: '2468', duressPin: '1357' };
  log.info({ ...secrets, device: { ...secrets } }, 'provisioned');
  await new Promise((r) => setImmediate(r));
  const text = lines.join('');
  t.match(text, /provisioned/);
  for (const v of Object.values(secrets)) t.notOk(text.includes(v), `${v} is not in the log`);
  t.match(text, /\[redacted\]/);
});
