/**
 * The dashboard in a real browser (the system's headless Chromium): what a person sees and does.
 * Skipped, with the reason printed, on a machine without Chromium. With DOCKET_DASHBOARD_SCREENSHOTS=1
 * the run also saves the README's screenshots into docs/.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { defineJob, JOB_STATES } from '@docket/core';
import { deferred, findChromium, launchChromium } from '@docket/testing';
import type { Browser, Page } from 'puppeteer-core';
import type { ServedDashboard } from '../src/index.js';
import { type Harness, harness, serve } from './helpers.js';
import { renderReport, seedHistory, sendEmail } from './seed.js';

const chromium = findChromium();
if (chromium.skip) console.log(`[dashboard] browser tests skipped: ${chromium.skip}`);
const SCREENSHOTS = process.env.DOCKET_DASHBOARD_SCREENSHOTS === '1';
const DOCS = new URL('../docs/', import.meta.url);

describe('the dashboard in a browser', { skip: chromium.skip }, () => {
  let h: Harness;
  let browser: Browser;
  let served: ServedDashboard;
  let seeded: Awaited<ReturnType<typeof seedHistory>>;

  before(async () => {
    h = await harness();
    seeded = await seedHistory(h);
    browser = await launchChromium();
    served = await serve(h.app, { refreshMs: 0, debounceMs: 50 });
  });
  after(async () => {
    await served?.close();
    await browser?.close();
    await h?.close();
  });

  async function open(path: string): Promise<Page> {
    const page = await browser.newPage();
    await page.setViewport({ width: 1360, height: 900, deviceScaleFactor: 1 });
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(new URL(path.replace(/^\//, ''), served.url).href, { waitUntil: 'domcontentloaded' });
    return page;
  }

  /**
   * Clicks in the page's own context, finding and clicking in one script: live updates may swap
   * the region holding the button between two steps from here (`page.$eval` is two: a query, then
   * a call on the element it found, by then perhaps detached, and a detached form submits nothing).
   * Resolves once the navigation the click causes is done (the page script leaves a submitted
   * form's region alone).
   */
  async function click(page: Page, selector: string): Promise<void> {
    const clicked = page.evaluate((sel) => {
      const button = document.querySelector<HTMLElement>(sel);
      button?.click();
      return button !== null;
    }, selector);
    await Promise.all([page.waitForNavigation({ timeout: 15_000 }), clicked.then((found) => assert.ok(found, `no ${selector} on the page`))]);
  }

  async function shot(page: Page, name: string, fullPage = true): Promise<void> {
    if (!SCREENSHOTS) return;
    await mkdir(DOCS, { recursive: true });
    await page.screenshot({ path: new URL(`${name}.png`, DOCS).pathname as `${string}.png`, fullPage });
  }

  test('the overview shows the counts the database holds, per queue and state', async () => {
    const page = await open('/');
    const shown = await page.$$eval('table.queues tbody tr', (rows) =>
      rows.map((tr) => ({
        queue: tr.getAttribute('data-queue'),
        counts: Object.fromEntries(
          [...tr.querySelectorAll('td[data-state]')].map((td) => [td.getAttribute('data-state'), (td.textContent ?? '').trim()]),
        ),
      })),
    );
    const rows = await h.db.sql<
      { queue: string; state: string; n: number }[]
    >`SELECT queue, state, count(*)::int AS n FROM docket.jobs GROUP BY 1, 2`;
    assert.deepEqual(shown.map((r) => r.queue).sort(), [...new Set(rows.map((r) => r.queue))].sort());
    for (const r of shown) {
      for (const state of JOB_STATES) {
        const n = rows.find((x) => x.queue === r.queue && x.state === state)?.n ?? 0;
        assert.equal(r.counts[state], n.toLocaleString('en-US'), `${r.queue} ${state}`);
      }
    }
    const failed = await page.$eval('[data-stat="failed"] .stat-value', (el) => el.textContent?.trim());
    assert.equal(failed, String(rows.filter((r) => r.state === 'failed').reduce((n, r) => n + r.n, 0)));
    assert.ok(await page.$('svg.chart rect.c-succeeded'), 'the chart has bars');
    await shot(page, 'overview');
    await page.close();
  });

  test("a failed job's page shows each attempt's error with its stack", async () => {
    const page = await open(`/jobs/${seeded.failedWebhook}`);
    const stack = await page.$eval('.attempt .stack-text', (el) => el.textContent ?? '');
    assert.match(stack, /at deliver \(\/srv\/app\/src\/jobs\/webhooks\.ts:41:11\)/);
    assert.ok(await page.$eval('.attempt .stack-text', (el) => (el as HTMLElement).offsetHeight > 40), 'the stack is visible, not collapsed');
    assert.match(await page.$eval('.attempt .error-title', (el) => el.textContent ?? ''), /ECONNREFUSED/);
    await shot(page, 'job-failed');
    await page.close();
    const list = await open('/jobs?state=failed');
    const [{ n }] = await h.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM docket.jobs WHERE state = 'failed'`;
    assert.equal(await list.$$eval('table.jobs tbody tr', (rows) => rows.length), n, 'every failed job, one page');
    await list.close();
    const all = await open('/jobs');
    await shot(all, 'jobs', false);
    await all.close();
  });

  test('retry from the UI makes a failed job run again', async () => {
    let calls = 0;
    const flaky = defineJob({ name: 'ui.flaky', queue: 'ui-retry' }, async () => {
      calls++;
      if (calls === 1) throw new Error('first attempt breaks');
      return 'second attempt works';
    });
    const ref = await h.app.push(flaky);
    await h.worker({ jobs: [flaky], queues: { 'ui-retry': {} } });
    assert.equal((await h.app.waitForJob(ref, { timeoutMs: 10_000 })).state, 'failed');
    const page = await open(`/jobs/${ref.id}`);
    await click(page, '#action-retry');
    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    assert.equal(done.result, 'second attempt works');
    assert.equal(calls, 2);
    assert.match(await page.$eval('.flash', (el) => el.textContent ?? ''), /will run again/);
    await page.close();
  });

  test("pause from the UI stops a running worker from starting that queue's jobs; resume lets it", async () => {
    const started: string[] = [];
    const gate = deferred();
    const work = defineJob({ name: 'ui.work', queue: 'ui-pause' }, async (_: unknown, ctx) => {
      started.push(ctx.job.id);
    });
    const marker = defineJob({ name: 'ui.marker', queue: 'ui-other' }, async () => gate.resolve());
    await h.worker({ jobs: [work, marker], queues: { 'ui-pause': { pollIntervalMs: 50 }, 'ui-other': {} } });
    const first = await h.app.push(work);
    await h.app.waitForJob(first, { timeoutMs: 10_000 });

    const page = await open('/');
    await click(page, 'tr[data-queue="ui-pause"] form[action$="/pause"] button');
    assert.equal((await h.app.listQueues()).find((q) => q.name === 'ui-pause')?.paused, true);
    assert.equal(await page.$eval('tr[data-queue="ui-pause"] .pill', (el) => el.textContent), 'paused');

    const held = await h.app.push(work);
    // The same worker serves another queue: once a job pushed after `held` has run there, the
    // worker has had every chance (and many polls) to start `held`.
    await h.app.push(marker);
    await gate.promise;
    for (let i = 0; i < 5; i++) await h.app.waitForJob(await h.app.push(marker), { timeoutMs: 10_000 });
    assert.equal((await h.app.getJob(held)).state, 'pending', 'not started while paused');
    assert.deepEqual(started, [first.id]);

    await click(page, 'tr[data-queue="ui-pause"] form[action$="/resume"] button');
    assert.equal((await h.app.waitForJob(held, { timeoutMs: 10_000 })).state, 'succeeded', 'resumed: it runs');
    await page.close();
  });

  test('a payload of <script> and "><img onerror> is shown as text and executes nothing', async () => {
    const payload = { note: '<script>window.__pwned = 1</script>', title: '"><img src=x onerror="window.__pwned = 2">' };
    const evil = defineJob({ name: 'ui.evil', queue: 'ui-evil' }, async (args: typeof payload) => {
      throw new Error(`${args.title} ${args.note}`);
    });
    const ref = await h.app.push(evil.withArgs(payload));
    await h.worker({ jobs: [evil], queues: { 'ui-evil': {} } });
    assert.equal((await h.app.waitForJob(ref, { timeoutMs: 10_000 })).state, 'failed');
    for (const path of [`/jobs/${ref.id}`, '/jobs?queue=ui-evil', '/']) {
      const page = await open(path);
      const dialogs: string[] = [];
      page.on('dialog', (d) => void dialogs.push(d.message()));
      await page.waitForNetworkIdle({ idleTime: 200, timeout: 5000 }).catch(() => undefined);
      assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, `${path}: nothing ran`);
      assert.equal(await page.$$eval('main img', (imgs) => imgs.length), 0, `${path}: no injected image`);
      assert.equal(await page.$$eval('main script', (s) => s.length), 0, `${path}: no injected script`);
      assert.deepEqual(dialogs, []);
      if (path.startsWith('/jobs/')) {
        const text = await page.$eval('main', (m) => m.textContent ?? '');
        assert.ok(text.includes(payload.note) && text.includes(payload.title), 'the payload is shown as the text it is');
      }
      await page.close();
    }
  });

  test('an open page follows the database: a pushed job appears without a reload', async () => {
    // Counted in the two queues pushed to (no worker serves them here), not the totals other tests move.
    const pending = () =>
      page.$$eval('tr[data-queue="emails"] td[data-state="pending"], tr[data-queue="reports"] td[data-state="pending"]', (tds) =>
        tds.reduce((n, td) => n + Number((td.textContent ?? '').replace(/,/g, '')), 0),
      );
    const page = await open('/');
    const before = await pending();
    await page.waitForSelector('#live-indicator[data-status="live"]', { timeout: 10_000 });
    await h.app.pushMany([
      sendEmail.withArgs({ to: 'a@example.com', template: 'welcome' }),
      renderReport.withArgs({ report: 'x', month: '2026-01' }),
    ]);
    await page.waitForFunction(
      (n) =>
        [...document.querySelectorAll('tr[data-queue="emails"] td[data-state="pending"], tr[data-queue="reports"] td[data-state="pending"]')].reduce(
          (sum, td) => sum + Number((td.textContent ?? '').replace(/,/g, '')),
          0,
        ) ===
        n + 2,
      { timeout: 10_000 },
      before,
    );
    await page.close();
  });

  test('the workers page lists each worker with its queues, heartbeat and running jobs', async () => {
    const hold = deferred();
    const running = deferred();
    const slow = defineJob({ name: 'ui.slow', queue: 'ui-workers' }, async () => {
      running.resolve();
      await hold.promise;
    });
    await h.worker({ jobs: [slow], queues: { 'ui-workers': {} } });
    const ref = await h.app.push(slow);
    await running.promise;
    const page = await open('/workers');
    const links = await page.$$eval('ul.running a', (as) => as.map((a) => a.getAttribute('href')));
    assert.ok(
      links.some((href) => href?.endsWith(`/jobs/${ref.id}`)),
      'the running job is listed under its worker',
    );
    const workers = await h.app.listWorkers();
    assert.equal(await page.$$eval('table.workers tbody tr', (rows) => rows.length), workers.length);
    await shot(page, 'workers');
    hold.resolve();
    await page.close();
  });
});
