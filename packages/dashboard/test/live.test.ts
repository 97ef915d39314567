/**
 * Live updates without a query storm: every open tab shares one subscription to the database's
 * notifications, a burst of changes reaches each tab as one event, and tabs that refetch the same
 * view share one query.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineJob } from '@docket/core';
import { SharedReads } from '../src/shared-reads.js';
import { Client, type Harness, harness, serve } from './helpers.js';

let h: Harness;
before(async () => (h = await harness()));
after(() => h.close());

const job = defineJob({ name: 'live.job', queue: 'live' }, async () => null);

/** An EventSource stand-in: counts `change` events on an open stream. */
async function stream(url: string): Promise<{ changes: () => number; next: () => Promise<void>; close: () => void }> {
  const controller = new AbortController();
  const res = await fetch(new URL('events', url), { signal: controller.signal, headers: { accept: 'text/event-stream' } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  let count = 0;
  let waiters: Array<() => void> = [];
  const reader = res.body?.getReader();
  const decoder = new TextDecoder();
  void (async () => {
    let buffer = '';
    try {
      for (;;) {
        const chunk = await reader?.read();
        if (!chunk || chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          if (/^event: change$/m.test(buffer.slice(0, end))) {
            count++;
            for (const w of waiters) w();
            waiters = [];
          }
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    changes: () => count,
    next: () => new Promise<void>((resolve) => waiters.push(resolve)),
    close: () => controller.abort(),
  };
}

test('twenty open tabs share one LISTEN subscription; a burst of pushes reaches each as one change event', async () => {
  const listens = { n: 0 };
  const listenActivity = h.app.listenActivity.bind(h.app);
  // Counts subscriptions (the real method still runs): what the dashboard asks of the app, per tab or per process.
  h.app.listenActivity = (fn) => {
    listens.n++;
    return listenActivity(fn);
  };
  const served = await serve(h.app, { refreshMs: 0, debounceMs: 1000 });
  const tabs = await Promise.all(Array.from({ length: 20 }, () => stream(served.url)));
  try {
    const first = tabs.map((t) => t.next());
    // Ten pushes within the debounce window (one statement each, one notification each).
    for (let i = 0; i < 10; i++) await h.app.push(job);
    await Promise.all(first);
    assert.equal(listens.n, 1, 'one subscription for every tab');
    // Another change after the window: one more event each, so the first burst made exactly one.
    const second = tabs.map((t) => t.next());
    await h.app.push(job);
    await Promise.all(second);
    assert.deepEqual(
      tabs.map((t) => t.changes()),
      Array(20).fill(2),
    );
  } finally {
    for (const t of tabs) t.close();
    await served.close();
    h.app.listenActivity = listenActivity;
  }
});

test('tabs refetching the same page at once cost one query per read', async () => {
  let counts = 0;
  const countJobs = h.app.countJobs.bind(h.app);
  h.app.countJobs = (options) => {
    counts++;
    return countJobs(options);
  };
  const served = await serve(h.app, { debounceMs: 1000 });
  try {
    // The page script's refetch after a change event (it says so in a header).
    const pages = await Promise.all(Array.from({ length: 20 }, () => new Client(served.url, { 'x-docket-live': '1' }).page('/')));
    assert.ok(pages.every((p) => p.status === 200));
    assert.equal(counts, 1, 'twenty overview refetches, one countJobs');
    // A navigation is a person's click: it reads the database itself.
    await new Client(served.url).page('/');
    assert.equal(counts, 2, 'a navigation reads afresh');
  } finally {
    await served.close();
    h.app.countJobs = countJobs;
  }
});

test('shared reads: concurrent callers of one key share the first call; a failed read is not kept', async () => {
  const reads = new SharedReads(10_000);
  let calls = 0;
  const slow = () =>
    new Promise<number>((resolve) => {
      calls++;
      setTimeout(() => resolve(calls), 10);
    });
  const values = await Promise.all(Array.from({ length: 50 }, () => reads.get('k', slow)));
  assert.deepEqual(new Set(values), new Set([1]));
  assert.equal(calls, 1);
  await reads.get('other', slow);
  assert.equal(calls, 2, 'another key is another read');
  await assert.rejects(reads.get('bad', () => Promise.reject(new Error('down'))));
  assert.equal(await reads.get('bad', async () => 7), 7, 'retried after a failure');
  reads.clear();
  await reads.get('k', slow);
  assert.equal(calls, 3, 'clear() forgets');
});

test("a change event's refetch shows the change, even moments after the same page was read", async () => {
  const served = await serve(h.app, { refreshMs: 0, debounceMs: 0 });
  const tab = await stream(served.url);
  const client = new Client(served.url, { 'x-docket-live': '1' });
  const pending = (text: string): number => {
    const row = /<tr data-queue="live-fresh">([\s\S]*?)<\/tr>/.exec(text)?.[1] ?? '';
    return Number(/data-state="pending"><a[^>]*>([\d,]+)</.exec(row)?.[1]?.replace(/,/g, '') ?? 0);
  };
  const fresh = defineJob({ name: 'live.fresh', queue: 'live-fresh' }, async () => null);
  try {
    await h.app.push(fresh);
    const before = pending((await client.page('/')).text);
    assert.equal(before, 1);
    // The page was just refetched (its reads are shared for a while); the push lands within that while.
    const change = tab.next();
    await h.app.push(fresh);
    await change;
    assert.equal(pending((await client.page('/')).text), 2, 'the refetch after the event reads the database again');
  } finally {
    tab.close();
    await served.close();
  }
});
