/**
 * The extension point: a third-party panel added through the `panels` option and a plugin that
 * contributes panels through DASHBOARD_PANELS, without the dashboard naming either.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Docket, type DocketPlugin, defineJob, isDocketError } from '@docket/core';
import type { TestDatabase } from '@docket/testing';
import { createDashboard, DASHBOARD_PANELS, type DashboardPanel, html } from '../src/index.js';
import { Client, type Harness, harness, serve } from './helpers.js';

let h: Harness;
before(async () => (h = await harness()));
after(() => h.close());

const job = defineJob({ name: 'panels.job', queue: 'panels' }, async () => null);

/** A third party's panels: a section on the overview and on every job, a page with an action. */
function thirdParty(log: string[]): DashboardPanel[] {
  return [
    { id: 'acme-health', title: 'Acme health', placement: 'overview', render: (ctx) => ctx.html`<p id="acme-health">All systems ${'<b>go</b>'}</p>` },
    {
      id: 'acme-job',
      title: 'Acme job notes',
      placement: 'job',
      render: (ctx, j) => (j.meta.acme ? ctx.html`<p id="acme-note">note: ${String(j.meta.acme)}</p>` : null),
    },
    {
      id: 'acme',
      title: 'Acme',
      placement: 'page',
      render: (ctx) => {
        const size = ctx.param('size', /\d{1,3}/) ?? '10';
        return ctx.html`<p id="acme-page">size ${size}</p>${ctx.actionButton('ping', { who: 'ops' }, 'Ping')}`;
      },
      actions: {
        ping: (_ctx, form) => {
          log.push(`ping from ${form.get('who')}`);
          return { message: 'Pinged <ops>' };
        },
      },
    },
    { id: 'acme-broken', title: 'Broken', placement: 'overview', render: () => Promise.reject(new Error('acme backend <down>')) },
  ];
}

test('a third-party panel shows on the overview, on job pages and as a page of its own; its action runs behind CSRF', async () => {
  const log: string[] = [];
  const served = await serve(h.app, { panels: thirdParty(log) });
  try {
    const client = new Client(served.url);
    const overview = await client.page('/');
    assert.match(
      overview.text,
      /<section class="card panel" id="panel-acme-health"[^>]*><h2>Acme health<\/h2><p id="acme-health">All systems &lt;b&gt;go&lt;\/b&gt;<\/p>/,
    );
    assert.match(overview.text, /This panel failed: acme backend &lt;down&gt;/, 'a failing panel shows its error, escaped');
    assert.match(overview.text, /<a href="\/p\/acme"[^>]*>Acme<\/a>/, 'the page is in the navigation');

    const plain = await h.app.push(job);
    const noted = await h.app.push(job.withMeta({ acme: '"><script>x()</script>' }));
    assert.doesNotMatch((await client.page(`/jobs/${plain.id}`)).text, /Acme job notes/, 'a panel that renders null shows nothing');
    const notedPage = (await client.page(`/jobs/${noted.id}`)).text;
    assert.match(notedPage, /<p id="acme-note">note: &quot;&gt;&lt;script&gt;x\(\)&lt;\/script&gt;<\/p>/);

    const page = await client.page('/p/acme?size=42');
    assert.match(page.text, /<p id="acme-page">size 42<\/p>/);
    assert.equal((await client.page('/p/acme?size=big')).status, 400, 'the panel validates its parameter through ctx.param');
    assert.equal((await client.page('/p/nope')).status, 404);

    assert.equal((await client.request('/p/acme/actions/ping', { body: { who: 'mallory' } })).status, 403, 'no CSRF token');
    const done = await client.request('/p/acme/actions/ping', { body: { _csrf: page.csrf ?? '', who: 'ops', _back: '/p/acme' } });
    assert.equal(done.status, 303);
    assert.equal(done.headers.get('location'), '/p/acme');
    assert.deepEqual(log, ['ping from ops']);
    assert.match((await client.page('/p/acme')).text, /Pinged &lt;ops&gt;/);
    assert.equal((await client.request('/p/acme/actions/nope', { body: { _csrf: page.csrf ?? '' } })).status, 404);
  } finally {
    await served.close();
  }
});

test('a plugin contributes panels through DASHBOARD_PANELS (a registered symbol: no import of the dashboard needed)', async () => {
  assert.equal(DASHBOARD_PANELS, Symbol.for('docket.dashboard.panels'));
  let loaded = 0;
  const plugin = {
    name: 'acme-plugin',
    apply() {},
    [Symbol.for('docket.dashboard.panels')]: async () => {
      loaded++;
      return [{ id: 'acme-plugin', title: 'From a plugin', placement: 'page', render: () => html`<p id="from-plugin">hello</p>` }];
    },
  } as DocketPlugin;
  const app = new Docket({ connection: h.db.url, plugins: [plugin], logger: false });
  const served = await serve(app, { readOnly: true });
  try {
    const client = new Client(served.url);
    assert.match((await client.page('/p/acme-plugin')).text, /<p id="from-plugin">hello<\/p>/);
    assert.match((await client.page('/')).text, /From a plugin/);
    assert.equal(loaded, 1, 'asked once per dashboard');
    assert.equal((await served.dashboard.panels()).length, 1);
  } finally {
    await served.close();
    await app.close();
  }
});

test('a panel of the wrong shape, or two with one id, is refused with a coded error naming it', async () => {
  const db: TestDatabase = h.db;
  const bad = async (panels: unknown[]) => {
    const dashboard = createDashboard(h.app, { panels: panels as DashboardPanel[] });
    await assert.rejects(dashboard.panels(), (e: unknown) => isDocketError(e, 'DOCKET_DASHBOARD_PANEL_INVALID'));
  };
  await bad([{ id: 'Bad Id', title: 'x', placement: 'page', render: () => null }]);
  await bad([{ id: 'x', title: 'x', placement: 'sidebar', render: () => null }]);
  await bad([{ id: 'x', title: 'x', placement: 'page' }]);
  await bad([{ id: 'x', title: 'x', placement: 'page', render: () => null, actions: { 'Do It': () => undefined } }]);
  await bad([
    { id: 'x', title: 'x', placement: 'page', render: () => null },
    { id: 'x', title: 'y', placement: 'job', render: () => null },
  ]);
  const plugin = { name: 'bad-plugin', apply() {}, [Symbol.for('docket.dashboard.panels')]: 'not a function' } as unknown as DocketPlugin;
  const app = new Docket({ connection: db.url, plugins: [plugin], logger: false });
  try {
    await assert.rejects(
      createDashboard(app).panels(),
      (e: unknown) => isDocketError(e, 'DOCKET_DASHBOARD_PANEL_INVALID') && /bad-plugin/.test((e as Error).message),
    );
  } finally {
    await app.close();
  }
});

test('the dashboard names no plugin: its source imports none and mentions no plugin feature', () => {
  const src = fileURLToPath(new URL('../src/', import.meta.url));
  const hits: string[] = [];
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  for (const file of walk(src)) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (/@docket\/plugin-|\b(cron|workflows?|schedules?|subtasks?|log lines?|leadership|concurrency|rate.?limit)\b/i.test(line))
          hits.push(`${file.slice(src.length)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(hits, []);
});
