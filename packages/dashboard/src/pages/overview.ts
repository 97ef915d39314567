/** The overview: counts per queue and state, paused or not, the last hour's throughput, pause/resume. */
import { JOB_STATES, type JobCount, type JobState } from '@docket/core';
import { sparkline, throughputChart } from '../chart.js';
import { count } from '../format.js';
import { type Html, html } from '../html.js';
import type { RequestContext } from '../request.js';
import { layout } from './layout.js';
import { panelSections } from './panel-sections.js';

interface QueueRow {
  name: string;
  paused: boolean;
  workers: number;
  counts: Map<JobState, JobCount>;
}

export async function overviewPage(ctx: RequestContext): Promise<Html> {
  const { app } = ctx.site;
  const { reads } = ctx;
  const [counts, queues, throughput, workers] = await Promise.all([
    reads.get('countJobs', () => app.countJobs()),
    reads.get('listQueues', () => app.listQueues()),
    reads.get('jobThroughput', () => app.jobThroughput()),
    reads.get('listWorkers', () => app.listWorkers()),
  ]);
  const rows = new Map<string, QueueRow>();
  const row = (name: string) => {
    let r = rows.get(name);
    if (!r) rows.set(name, (r = { name, paused: false, workers: 0, counts: new Map() }));
    return r;
  };
  for (const q of queues) row(q.name).paused = q.paused;
  for (const c of counts) row(c.queue).counts.set(c.state, c);
  for (const b of throughput.buckets) row(b.queue);
  for (const w of workers) for (const q of w.queues) row(q).workers++;
  const sorted = [...rows.values()].sort((a, b) => a.name.localeCompare(b.name));

  const total = (state: JobState) => counts.filter((c) => c.state === state).reduce((n, c) => n + c.count, 0);
  const exact = (state: JobState) => counts.filter((c) => c.state === state).every((c) => c.exact);
  const lastHour = throughput.buckets.reduce(
    (acc, b) => ({ ok: acc.ok + b.succeeded, failed: acc.failed + b.failed, cancelled: acc.cancelled + b.cancelled }),
    {
      ok: 0,
      failed: 0,
      cancelled: 0,
    },
  );

  const stat = (label: string, value: Html, cls: string, href?: string) =>
    html`<a class="stat ${cls}" ${href ? html`href="${href}"` : ''} data-stat="${label.toLowerCase().replace(/\s+/g, '-')}"><span class="stat-label">${label}</span><span class="stat-value">${value}</span></a>`;

  const cell = (r: QueueRow, state: JobState) => {
    const c = r.counts.get(state);
    const n = c?.count ?? 0;
    return html`<td class="num" data-state="${state}"><a href="${ctx.href('/jobs', { queue: r.name, state })}" class="${n === 0 ? 'zero' : `n-${state}`}">${count(n, c?.exact ?? true)}</a></td>`;
  };

  const body = html`
<div class="page-head"><h1>Overview</h1><p class="muted">Jobs per queue and state, and what finished in the last hour.</p></div>
<section class="stats" id="overview-stats" data-live>
  ${stat('Pending', count(total('pending')), 's-pending', ctx.href('/jobs', { state: 'pending' }))}
  ${stat('Running', count(total('running')), 's-running', ctx.href('/jobs', { state: 'running' }))}
  ${stat('Waiting', count(total('waiting')), 's-waiting', ctx.href('/jobs', { state: 'waiting' }))}
  ${stat('Failed', count(total('failed'), exact('failed')), 's-failed', ctx.href('/jobs', { state: 'failed' }))}
  ${stat('Succeeded last hour', count(lastHour.ok), 's-succeeded')}
  ${stat('Failed last hour', count(lastHour.failed), 's-failed')}
  ${stat('Workers', count(workers.length), 's-workers', ctx.href('/workers'))}
</section>
<section class="card" id="overview-chart" data-live>
  <div class="card-head"><h2>Throughput, last hour</h2>
    <div class="legend"><span class="key c-succeeded"></span>succeeded <span class="key c-failed"></span>failed <span class="key c-cancelled"></span>cancelled</div></div>
  ${throughputChart(throughput)}
</section>
<section class="card" id="overview-queues" data-live>
  <div class="card-head"><h2>Queues</h2><span class="muted">${sorted.length} queue${sorted.length === 1 ? '' : 's'}</span></div>
  ${
    sorted.length === 0
      ? html`<p class="empty">No queue has jobs yet. Push one, or start a worker.</p>`
      : html`<div class="table-wrap"><table class="queues">
    <thead><tr><th>Queue</th><th>Status</th>${JOB_STATES.map((s) => html`<th class="num">${s}</th>`)}<th>Last hour</th><th class="num">Workers</th><th></th></tr></thead>
    <tbody>${sorted.map(
      (r) => html`<tr data-queue="${r.name}">
      <td><a class="strong" href="${ctx.href('/jobs', { queue: r.name })}">${r.name}</a></td>
      <td>${r.paused ? html`<span class="pill pill-paused" data-paused="true">paused</span>` : html`<span class="pill pill-active" data-paused="false">active</span>`}</td>
      ${JOB_STATES.map((s) => cell(r, s))}
      <td>${sparkline(throughput, r.name)}</td>
      <td class="num">${r.workers}</td>
      <td class="actions">${
        r.paused
          ? ctx.form(`/queues/${encodeURIComponent(r.name)}/resume`, {}, 'Resume')
          : ctx.form(`/queues/${encodeURIComponent(r.name)}/pause`, {}, 'Pause', {
              confirm: `Pause queue ${r.name}? Workers stop starting its jobs (running ones finish).`,
            })
      }</td>
    </tr>`,
    )}</tbody></table></div>`
  }
  ${counts.some((c) => !c.exact) ? html`<p class="note">≈ estimated from the table's statistics (large finished groups are not counted row by row).</p>` : ''}
</section>
${await panelSections(ctx, 'overview')}`;
  return layout(ctx, { title: 'Overview', active: 'overview', body });
}
