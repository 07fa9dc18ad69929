/**
 * The Node-RED editor in a real browser (Debian's Chromium, playwright-core), through the gateway's
 * HTTP port: the login dialog takes a gateway installer's account, the editor loads with its
 * WebSocket, the Lianfang nodes are in the palette and the example flows in the import menu, and an
 * alarm-in node's edit dialog shows and saves its filters. Screenshots go to
 * docs/screenshots/node-red-editor.png and node-red-alarm-in.png (overwritten each run).
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

  // The alarm-in node's edit dialog (the forms lianfang.html builds): the example's "raised" is
  // ticked; ticking "duress" and Done saves both lists on the node.
  const alarmIn = (await page.evaluate(() => (window as unknown as { RED: { nodes: { filterNodes(f: object): { id: string }[] } } }).RED.nodes.filterNodes({ type: 'lianfang-alarm-in' })[0]!.id)) as string;
  await page.evaluate((id) => {
    const RED = (window as unknown as { RED: { nodes: { node(id: string): unknown }; editor: { edit(n: unknown): void } } }).RED;
    RED.editor.edit(RED.nodes.node(id));
  }, alarmIn);
  await page.locator('#node-input-state-raised').waitFor({ timeout: 30_000 });
  t.ok(await page.locator('#node-input-state-raised').isChecked(), 'the state the flow has is ticked');
  t.notOk(await page.locator('#node-input-state-closed').isChecked(), 'the others are not');
  t.equal(await page.locator('#node-input-stations').getAttribute('placeholder'), 'blank = all / 留空为全部 (e.g. PS01, C03)');
  await page.check('#node-input-kind-duress');
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(SHOTS, 'node-red-alarm-in.png') });
  await page.click('#node-dialog-ok');
  await page.locator('#node-input-state-raised').waitFor({ state: 'detached', timeout: 30_000 });
  const saved = await page.evaluate((id) => {
    const n = (window as unknown as { RED: { nodes: { node(id: string): { kinds: string; states: string } } } }).RED.nodes.node(id);
    return { kinds: n.kinds, states: n.states };
  }, alarmIn);
  t.same(saved, { kinds: 'duress', states: 'raised' }, 'the dialog saved the ticked kinds and states');

  // Every other Lianfang node's dialog opens with its fields; command-out shows the fields of the
  // command chosen.
  const fields: Record<string, string[]> = {
    'lianfang-event-in': ['types', 'shops', 'includeTests', 'name'],
    'lianfang-fault-in': ['faults', 'changes', 'name'],
    'lianfang-command-out': ['deviceId', 'shopId', 'command', 'on', 'seconds', 'text', 'line2', 'colour', 'blink', 'name'],
    'lianfang-alarm-note': ['note', 'name'],
  };
  for (const [i, [type, ids]] of Object.entries(fields).entries()) {
    await page.evaluate(({ type, id }) => {
      const RED = (window as unknown as { RED: { view: { importNodes(n: unknown): void }; nodes: { node(id: string): unknown }; editor: { edit(n: unknown): void } } }).RED;
      RED.view.importNodes([{ id, type, x: 200, y: 300 + 60 * Number(id.slice(-1)), wires: [[]] }]);
      RED.editor.edit(RED.nodes.node(id));
    }, { type, id: `lf7ed1000000000${i}` });
    await page.locator('#node-input-name').waitFor({ timeout: 30_000 });
    for (const id of ids) t.equal(await page.locator(`#node-input-${id}`).count(), 1, `${type}: ${id}`);
    if (type === 'lianfang-command-out') {
      await page.selectOption('#node-input-command', 'display');
      t.ok((await page.locator('#node-input-text').isVisible()) && !(await page.locator('#node-input-seconds').isVisible()), 'display: its two lines, no seconds');
      await page.selectOption('#node-input-command', 'sounder');
      t.ok((await page.locator('#node-input-seconds').isVisible()) && !(await page.locator('#node-input-colour').isVisible()), 'sounder: on and seconds, no colour');
    }
    await page.click('#node-dialog-cancel');
    await page.locator('#node-input-name').waitFor({ state: 'detached', timeout: 30_000 });
  }
  t.same(errors, [], 'no script errors');
});
