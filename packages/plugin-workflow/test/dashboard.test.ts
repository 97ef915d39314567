/**
 * The workflow panel on the dashboard, in a real browser (the system's headless Chromium; skipped
 * with the reason printed without it): the graph shows each step's state as the database holds it.
 * With DOCKET_DASHBOARD_SCREENSHOTS=1 it saves docs/dashboard-workflow.png.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defineJob } from '@docket/core';
import { type ServedDashboard, serveDashboard } from '@docket/dashboard';
import { deferred, findChromium, launchChromium } from '@docket/testing';
import { getWorkflow, pushWorkflow, workflow } from '../src/index.js';
import { type Harness, harness } from './helpers.js';

const chromium = findChromium();
if (chromium.skip) console.log(`[workflow] dashboard browser test skipped: ${chromium.skip}`);

describe('the workflow panel in a browser', { skip: chromium.skip }, () => {
  let h: Harness;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let served: ServedDashboard;
  before(async () => {
    h = await harness();
    browser = await launchChromium();
    served = await serveDashboard(h.app, { port: 0 });
  });
  after(async () => {
    await served?.close();
    await browser?.close();
    await h?.close();
  });

  test("a step's page draws its workflow with every step's state, each linking to its job", async () => {
    const reserveRan = deferred<string>();
    const notifyStarted = deferred<string>();
    const release = deferred();
    const validate = defineJob({ name: 'orders.validate', queue: 'orders' }, async () => ({ ok: true }));
    const charge = defineJob({ name: 'payments.charge', queue: 'orders' }, async () => ({ charged: 4200 }));
    const reserve = defineJob({ name: 'stock.reserve', queue: 'orders' }, async (_: unknown, ctx) => {
      reserveRan.resolve(ctx.job.id);
      throw new Error('out of stock: sku-7');
    });
    const notify = defineJob({ name: 'emails.receipt', queue: 'orders' }, async (_: unknown, ctx) => {
      notifyStarted.resolve(ctx.job.id);
      await release.promise;
    });
    const ship = defineJob({ name: 'shipping.label', queue: 'orders' }, async () => null);
    const run = await pushWorkflow(
      h.app,
      workflow('order-fulfilment', { onFailure: 'continue' })
        .step('validate', validate)
        .step('charge', charge, { after: ['validate'] })
        .step('reserve', reserve, { after: ['validate'] })
        .step('receipt', notify, { after: ['charge'] })
        .step('ship', ship, { after: ['charge', 'reserve'] }),
    );
    await h.worker({ jobs: [validate, charge, reserve, notify, ship], queues: { orders: { concurrency: 4 } } });
    const receiptJob = await notifyStarted.promise;
    await h.app.waitForJob(await reserveRan.promise, { timeoutMs: 10_000 });
    const record = await getWorkflow(h.app, run);
    const expected = Object.fromEntries(record.steps.map((s) => [s.key, s.state]));
    assert.equal(expected.receipt, 'running');
    assert.equal(expected.reserve, 'failed');
    assert.equal(expected.validate, 'succeeded');

    const page = await browser.newPage();
    await page.setViewport({ width: 1360, height: 900 });
    await page.goto(new URL(`jobs/${receiptJob}`, served.url).href, { waitUntil: 'domcontentloaded' });
    const shown = await page.$$eval('#panel-workflow svg.graph g.node', (nodes) =>
      nodes.map((n) => ({ step: n.getAttribute('data-step'), state: n.getAttribute('data-state'), current: n.classList.contains('current') })),
    );
    assert.deepEqual(Object.fromEntries(shown.map((n) => [n.step, n.state])), expected);
    assert.deepEqual(
      shown.filter((n) => n.current).map((n) => n.step),
      ['receipt'],
      'the step of this page is marked',
    );
    const links = await page.$$eval('#panel-workflow svg.graph a', (as) => as.map((a) => a.getAttribute('href')));
    for (const step of record.steps.filter((s) => s.jobId)) assert.ok(links.includes(`/jobs/${step.jobId}`), `${step.key} links to its job`);
    assert.ok(
      await page.$eval('#panel-workflow svg.graph', (svg) => svg.getBoundingClientRect().width > 300),
      'the graph is drawn at a readable size',
    );
    if (process.env.DOCKET_DASHBOARD_SCREENSHOTS === '1') {
      await page.screenshot({ path: new URL('../docs/dashboard-workflow.png', import.meta.url).pathname as `${string}.png`, fullPage: true });
    }
    release.resolve();
    await page.close();
  });
});
