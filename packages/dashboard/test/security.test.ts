import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defineJob, isDocketError } from '@docket/core';
import { serveDashboard } from '../src/index.js';
import { Client, type Harness, harness, serve } from './helpers.js';

const TOKEN = 'a-long-random-test-token-0123456789';

let h: Harness;
before(async () => {
  h = await harness();
  await h.app.declareQueue('emails');
});
after(() => h.close());

describe('authentication', () => {
  test('bearer token: no credentials → 401, a wrong token → 401, the token → 200; the login form trades it for a session cookie', async () => {
    const served = await serve(h.app, { auth: { token: TOKEN } });
    try {
      const anonymous = new Client(served.url);
      assert.equal((await anonymous.request('/', { headers: { accept: 'application/json' } })).status, 401);
      const login = await anonymous.page('/');
      assert.equal(login.status, 401, 'a browser gets the login form, still with 401');
      assert.match(login.text, /Access token/);
      assert.equal((await new Client(served.url, { authorization: `Bearer wrong-${TOKEN}` }).request('/')).status, 401);
      assert.equal((await new Client(served.url, { authorization: 'Bearer ' }).request('/jobs')).status, 401);
      assert.equal((await new Client(served.url, { authorization: `Bearer ${TOKEN}` }).request('/')).status, 200);
      for (const path of ['/jobs', '/workers', '/events', '/jobs/1']) {
        assert.equal((await anonymous.request(path, { headers: { accept: '*/*' } })).status, 401, `${path} is closed too`);
      }

      const form = await anonymous.page('/login');
      const wrong = await anonymous.request('/login', { body: { _csrf: form.csrf ?? '', token: 'not-it-at-all-0000000' } });
      assert.equal(wrong.status, 401);
      const right = await anonymous.request('/login', { body: { _csrf: form.csrf ?? '', token: TOKEN } });
      assert.equal(right.status, 303);
      assert.ok(anonymous.cookies.has('docket_session'), 'a session cookie');
      assert.equal((await anonymous.request('/')).status, 200, 'the session lets the browser in');
      const page = await anonymous.page('/');
      assert.equal((await anonymous.request('/logout', { body: { _csrf: page.csrf ?? '' } })).status, 303);
      assert.equal((await anonymous.request('/', { headers: { accept: 'text/plain' } })).status, 401, 'signed out');
    } finally {
      await served.close();
    }
  });

  test('basic credentials: the browser is asked (WWW-Authenticate); wrong user or password → 401', async () => {
    const served = await serve(h.app, { auth: { username: 'ops', password: 'correct horse' } });
    const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    try {
      const none = await new Client(served.url).request('/');
      assert.equal(none.status, 401);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Basic realm=/);
      assert.equal((await new Client(served.url, { authorization: basic('ops', 'wrong password') }).request('/')).status, 401);
      assert.equal((await new Client(served.url, { authorization: basic('root', 'correct horse') }).request('/')).status, 401);
      assert.equal((await new Client(served.url, { authorization: basic('ops', 'correct horse') }).request('/')).status, 200);
    } finally {
      await served.close();
    }
  });

  test("the host app's authorize(request) decides", async () => {
    const served = await serve(h.app, { auth: { authorize: (req) => req.headers['x-user'] === 'alice' } });
    try {
      assert.equal((await new Client(served.url).request('/')).status, 401);
      assert.equal((await new Client(served.url, { 'x-user': 'mallory' }).request('/')).status, 401);
      assert.equal((await new Client(served.url, { 'x-user': 'alice' }).request('/')).status, 200);
    } finally {
      await served.close();
    }
  });

  test('a non-loopback address without authentication is refused at start with a coded error; with auth it starts', async () => {
    await assert.rejects(serveDashboard(h.app, { port: 0, host: '0.0.0.0' }), (e: unknown) => isDocketError(e, 'DOCKET_DASHBOARD_UNSAFE_BIND'));
    await assert.rejects(serveDashboard(h.app, { port: 0, host: '::' }), (e: unknown) => isDocketError(e, 'DOCKET_DASHBOARD_UNSAFE_BIND'));
    const served = await serveDashboard(h.app, { port: 0, host: '0.0.0.0', auth: { token: TOKEN } });
    try {
      const port = new URL(served.url).port;
      assert.equal((await new Client(`http://127.0.0.1:${port}/`).request('/')).status, 401);
    } finally {
      await served.close();
    }
    const local = await serveDashboard(h.app, { port: 0 });
    try {
      assert.match(local.url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'loopback by default');
    } finally {
      await local.close();
    }
  });

  test('weak or malformed auth options are refused', async () => {
    const invalid = (e: unknown) => isDocketError(e, 'DOCKET_INVALID_OPTION');
    await assert.rejects(serve(h.app, { auth: { token: 'short' } }), invalid);
    await assert.rejects(serve(h.app, { auth: { username: 'a:b', password: 'long enough' } }), invalid);
    await assert.rejects(serve(h.app, { auth: { token: TOKEN, extra: 1 } as never }), invalid);
    await assert.rejects(serve(h.app, { readonly: true } as never), invalid, 'unknown keys are named');
  });
});

describe('actions', () => {
  test('a POST without its CSRF token → 403, with a forged or cross-site one → 403; nothing changes. With it → done', async () => {
    const served = await serve(h.app);
    try {
      const client = new Client(served.url);
      const page = await client.page('/');
      assert.ok(page.csrf, 'forms carry a CSRF token');
      const pause = (body: Record<string, string>, headers: Record<string, string> = {}) => client.request('/queues/emails/pause', { body, headers });
      assert.equal((await pause({})).status, 403, 'missing token');
      assert.equal((await pause({ _csrf: 'x'.repeat(43) })).status, 403, 'forged token');
      assert.equal((await pause({ _csrf: page.csrf as string }, { 'sec-fetch-site': 'cross-site' })).status, 403, 'from another site');
      const stranger = new Client(served.url);
      await stranger.page('/');
      assert.equal((await stranger.request('/queues/emails/pause', { body: { _csrf: page.csrf as string } })).status, 403, "another browser's token");
      assert.equal((await h.app.listQueues()).find((q) => q.name === 'emails')?.paused, false, 'still running');

      const ok = await pause({ _csrf: page.csrf as string, _back: '/jobs' });
      assert.equal(ok.status, 303);
      assert.equal(ok.headers.get('location'), '/jobs');
      assert.equal((await h.app.listQueues()).find((q) => q.name === 'emails')?.paused, true);
      const after = await client.page('/jobs');
      assert.match(after.text, /Queue emails paused/, 'the action says what it did');
      const evil = await pause({ _csrf: page.csrf as string, _back: 'https://evil.example/' });
      assert.equal(evil.headers.get('location'), '/', 'never redirects off the dashboard');
      await h.app.resumeQueue('emails');
    } finally {
      await served.close();
    }
  });

  test('read-only: no buttons, and every action is refused with 403', async () => {
    const job = defineJob({ name: 'ro.job', queue: 'ro' }, async () => null);
    const ref = await h.app.push(job);
    await h.db.sql`UPDATE docket.jobs SET state = 'failed', attempt = 1, finished_at = now() WHERE id = ${ref.id}`;
    const served = await serve(h.app, { readOnly: true });
    try {
      const client = new Client(served.url);
      const page = await client.page(`/jobs/${ref.id}`);
      assert.equal(page.status, 200);
      assert.doesNotMatch(page.text, /<button[^>]*>Retry/);
      assert.match(page.text, /read-only/);
      // With a valid CSRF token (from a dashboard with actions, same secret, same browser), read-only still refuses.
      const secret = 's'.repeat(40);
      const writable = await serve(h.app, { secret });
      const readOnly = await serve(h.app, { secret, readOnly: true });
      try {
        const browser = new Client(writable.url);
        const { csrf } = await browser.page('/');
        const asReadOnly = new Client(readOnly.url);
        for (const [k, v] of browser.cookies) asReadOnly.cookies.set(k, v);
        for (const path of [`/jobs/${ref.id}/retry`, '/queues/ro/pause', '/jobs/retry-failed']) {
          const res = await asReadOnly.request(path, { body: { _csrf: csrf ?? '' } });
          assert.equal(res.status, 403, path);
          assert.match(await res.text(), /read-only/);
        }
        // The same token is accepted where actions are allowed: the refusal above is read-only's.
        assert.equal((await browser.request(`/jobs/${ref.id}/retry`, { body: { _csrf: csrf ?? '' } })).status, 303);
        await h.db.sql`UPDATE docket.jobs SET state = 'failed', attempt = 1, finished_at = now() WHERE id = ${ref.id}`;
      } finally {
        await writable.close();
        await readOnly.close();
      }
      assert.equal((await h.app.getJob(ref)).state, 'failed', 'not retried');
    } finally {
      await served.close();
    }
  });
});

describe('input and output', () => {
  test('every query parameter is validated: a bad one answers 400 and echoes nothing unescaped', async () => {
    const served = await serve(h.app);
    try {
      const client = new Client(served.url);
      for (const path of [
        '/jobs?state=bogus',
        '/jobs?queue=%3Cscript%3Ealert(1)%3C%2Fscript%3E',
        '/jobs?name=a%20b',
        '/jobs?since=yesterday',
        '/jobs?cursor=%21%21',
        '/jobs?order=sideways',
        '/jobs?state=failed&state=pending',
        '/jobs?since=2030-01-02T00:00&before=2030-01-01T00:00',
      ]) {
        const page = await client.page(path);
        assert.equal(page.status, 400, path);
        assert.doesNotMatch(page.text, /<script>alert/);
      }
      assert.equal((await client.page('/jobs?cursor=MTIz')).status, 200, 'a well-formed cursor');
      assert.equal((await client.page('/jobs/abc')).status, 404);
      assert.equal((await client.page('/jobs/99999999')).status, 404);
      assert.equal((await client.page('/nothing')).status, 404);
      assert.equal((await client.request('/jobs', { method: 'POST', body: {} })).status, 403, 'CSRF comes before routing');
    } finally {
      await served.close();
    }
  });

  test("a job's args, errors and names are escaped; every page carries a CSP that runs no inline script", async () => {
    const payload = { x: '<script>window.__pwned = 1</script>', y: '"><img src=x onerror="window.__pwned = 2">' };
    const job = defineJob({ name: 'xss.job', queue: 'xss' }, async (_args: typeof payload) => null);
    const ref = await h.app.push(job.withArgs(payload));
    const error = {
      attempt: 1,
      name: '<b>Bold</b>',
      message: payload.y,
      stack: `Error: ${payload.x}\n    at <anonymous>`,
      at: new Date().toISOString(),
    };
    await h.db
      .sql`UPDATE docket.jobs SET state = 'failed', attempt = 1, finished_at = now(), errors = ${h.db.sql.json([error])} WHERE id = ${ref.id}`;
    const served = await serve(h.app);
    try {
      const client = new Client(served.url);
      for (const path of [`/jobs/${ref.id}`, '/jobs?state=failed']) {
        const res = await client.request(path);
        assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
        assert.equal(res.headers.get('x-frame-options'), 'DENY');
        const text = await res.text();
        assert.doesNotMatch(text, /<script>window/, `${path}: no raw script`);
        assert.doesNotMatch(text, /<img src=x/, `${path}: no raw img`);
        assert.doesNotMatch(text, /<b>Bold/, `${path}: no raw markup from an error name`);
        assert.match(text, /&lt;img src=x onerror=/, `${path}: shown as text`);
      }
    } finally {
      await served.close();
    }
  });
});
