/** Workers with a heartbeat: host, pid, queues, heartbeat age, and the jobs each runs now. */
import type { JobRecord } from '@docket/core';
import { duration, stateBadge, time } from '../format.js';
import { type Html, html } from '../html.js';
import type { RequestContext } from '../request.js';
import { layout } from './layout.js';

/** Running jobs listed per worker, at most this many over all workers. */
const RUNNING_SHOWN = 1000;

export async function workersPage(ctx: RequestContext): Promise<Html> {
  const { app } = ctx.site;
  const { reads } = ctx;
  const [workers, running] = await Promise.all([
    reads.get('listWorkers', () => app.listWorkers()),
    reads.get('running', () => app.listJobs({ state: 'running', limit: RUNNING_SHOWN })),
  ]);
  const byWorker = new Map<string, JobRecord[]>();
  for (const job of running.jobs) {
    if (!job.workerId) continue;
    const list = byWorker.get(job.workerId) ?? [];
    list.push(job);
    byWorker.set(job.workerId, list);
  }
  const body = html`
<div class="page-head"><h1>Workers</h1><p class="muted">Processes with a heartbeat row, oldest first.</p></div>
<section class="card" id="workers-table" data-live>
  ${
    workers.length === 0
      ? html`<p class="empty">No worker is running.</p>`
      : html`<div class="table-wrap"><table class="workers"><thead><tr><th>Worker</th><th>Host</th><th class="num">PID</th><th>Queues</th><th>Started</th><th>Heartbeat</th><th>Running now</th></tr></thead><tbody>
    ${workers.map((w) => {
      const stale = w.heartbeatAgeMs > 3 * w.heartbeatIntervalMs;
      const jobs = byWorker.get(w.id) ?? [];
      return html`<tr data-worker="${w.id}">
        <td class="mono">${w.id}</td>
        <td>${w.hostname}</td>
        <td class="num mono">${w.pid}</td>
        <td>${w.queues.map((q) => html`<a class="tag" href="${ctx.href('/jobs', { queue: q })}">${q}</a>`)}</td>
        <td>${time(w.startedAt)}</td>
        <td><span class="${stale ? 'pill pill-stale' : 'pill pill-active'}" title="every ${duration(w.heartbeatIntervalMs)}">${duration(w.heartbeatAgeMs)} ago</span></td>
        <td>${
          w.runningJobs === 0
            ? html`<span class="muted">idle</span>`
            : html`<span class="strong">${w.runningJobs} running</span> ${jobs.length > 0 ? html`<ul class="running">${jobs.slice(0, 10).map((j) => html`<li><a href="${ctx.jobHref(j.id)}">${j.name} <span class="mono muted">#${j.id}</span></a> ${stateBadge('running')} <span class="muted">since ${time(j.startedAt)}</span></li>`)}${jobs.length > 10 ? html`<li class="muted">and ${jobs.length - 10} more</li>` : ''}</ul>` : ''}`
        }</td>
      </tr>`;
    })}</tbody></table></div>`
  }
</section>`;
  return layout(ctx, { title: 'Workers', active: 'workers', body });
}
