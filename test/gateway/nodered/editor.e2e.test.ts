/**
 * The Node-RED editor in a real browser (Debian's Chromium, playwright-core), through the gateway's
 * HTTP port: the login dialog takes a gateway installer's account, the editor loads with its
 * WebSocket, the Lianfang nodes are in the palette and the example flows in the import menu. A
 * screenshot goes to docs/screenshots/node-red-editor.png (overwritten each run).
 */
import t from 'tap';
import { join } from 'node:path';
import { ROOT } from '../../helpers/gateway.js';
import { launchBrowser } from '../../helpers/console-street.js';
import { INSTALLER, flowsUrl, provisionNodeRedStreet, startWithNodeRed } from '../../helpers/node-red.js';

const SHOTS = join(ROOT, 'docs', 'screenshots');

t.test('an installer signs in to the editor and finds the Lianfang nodes and examples', async (t) => {
  const { data } = await provisionNodeRedStreet(t, 1);
  const gw = await startWithNodeRed(t, data);
  const browser = await launchBrowser(t);
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'en-US' });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await page.goto(flowsUrl(gw, '/'));
  await page.locator('#node-dialog-login-username').waitFor({ timeout: 60_000 });
  await page.fill('#node-dialog-login-username', INSTALLER.username);
  await page.fill('#node-dialog-login-password', 'not-the-password');
  await page.click('#node-dialog-login-submit');
  await page.locator('#node-dialog-login-failed').waitFor({ state: 'visible', timeout: 30_000 });
  t.pass('a wrong password is refused in the dialog');
  await page.fill('#node-dialog-login-password', INSTALLER.password);
  await page.click('#node-dialog-login-submit');

  // The palette's Lianfang category, with its five nodes, once the editor has loaded.
  const category = page.locator('#red-ui-palette-header-Lianfang');
  await category.waitFor({ timeout: 60_000 });
  for (const type of ['lianfang-alarm-in', 'lianfang-event-in', 'lianfang-fault-in', 'lianfang-command-out', 'lianfang-alarm-note']) {
    t.equal(await page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`).count(), 1, `${type} is in the palette`);
  }
  // Asked as the editor's import menu asks (its jQuery adds the login's token).
  const examples = (await page.evaluate(
    () => new Promise((resolve, reject) => (window as unknown as { $: { getJSON(u: string): { done(f: (v: unknown) => void): { fail(f: () => void): void } } } }).$.getJSON('library/examples/flows/node-red-contrib-lianfang').done(resolve).fail(reject)),
  )) as { fn?: string }[];
  t.ok(examples.length >= 4, `the example flows are in the import menu (${examples.map((e) => e.fn).join(', ')})`);
  // The editor's WebSocket through the gateway: no "lost connection" notice.
  t.equal(await page.locator('.red-ui-notification:has-text("Lost connection")').count(), 0, 'the editor is connected');
  // For the screenshot: the example webhook flow imported onto the canvas (not deployed), the palette filtered to Lianfang.
  await page.evaluate(
    () =>
      new Promise<void>((resolve, reject) => {
        const w = window as unknown as {
          $: { getJSON(u: string): { done(f: (v: { id: string; type: string }[]) => void): { fail(f: () => void): void } } };
          RED: { view: { importNodes(n: unknown): void }; workspaces: { show(id: string): void } };
        };
        w.$.getJSON('library/examples/flows/node-red-contrib-lianfang/webhook-on-every-alarm')
          .done((flow) => {
            w.RED.view.importNodes(flow);
            w.RED.workspaces.show(flow.find((n) => n.type === 'tab')!.id);
            resolve();
          })
          .fail(reject);
      }),
  );
  await page.click('#red-ui-palette-search input');
  await page.keyboard.type('lianfang');
  await page.evaluate(() => document.querySelectorAll('.red-ui-notification').forEach((n) => n.remove()));
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(SHOTS, 'node-red-editor.png') });
  t.same(errors, [], 'no script errors');
});
