/** The jobs list: filter by queue, state, name and creation time, find by id, keyset pages. */
import type { JobRecord } from '@docket/core';
import { clip, duration, stateBadge, time } from '../format.js';
import { type Html, html } from '../html.js';
import { JOB_ID, jobsQuery, jobsQueryParams } from '../params.js';
import type { RequestContext } from '../request.js';
import { layout } from './layout.js';

export async function jobsPage(ctx: RequestContext): Promise<Html | { redirect: string }> {
  const find = ctx.param('id', /\s*\d{0,19}\s*/)?.trim();
  if (find) {
    if (!new RegExp(`^${JOB_ID.source}$`).test(find)) return { redirect: ctx.href('/jobs') };
    return { redirect: ctx.jobHref(find) };
  }
  const q = jobsQuery(ctx);
  const { app, pageSize } = ctx.site;
  const { reads } = ctx;
  const options = {
    queue: q.queue,
    state: q.state,
    name: q.name,
    createdSince: q.since,
    createdBefore: q.before,
    order: q.order,
    limit: pageSize,
    cursor: q.cursor ?? null,
  };
  const [page, queues] = await Promise.all([
    reads.get(`listJobs:${JSON.stringify(options)}`, () => app.listJobs(options)),
    reads.get('listQueues', () => app.listQueues()),
  ]);
  const params = jobsQueryParams(q);
  const queueNames = [...new Set([...queues.map((x) => x.name), ...(q.queue ? [q.queue] : [])])].sort();
  const iso = (d: Date | undefined) => d?.toISOString().slice(0, 16) ?? '';

  const filter = html`<form method="get" action="${ctx.href('/jobs')}" class="filters" id="jobs-filter">
  <label>Queue<select name="queue"><option value="">any</option>${queueNames.map((n) => html`<option value="${n}"${n === q.queue ? ' selected' : ''}>${n}</option>`)}</select></label>
  <label>State<select name="state"><option value="">any</option>${['pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'].map((s) => html`<option value="${s}"${s === q.state ? ' selected' : ''}>${s}</option>`)}</select></label>
  <label>Name<input type="text" name="name" value="${q.name ?? ''}" placeholder="e.g. emails.send" pattern="[A-Za-z0-9_.:/\\-]{1,200}"></label>
  <label>Created since (UTC)<input type="datetime-local" name="since" value="${iso(q.since)}"></label>
  <label>before (UTC)<input type="datetime-local" name="before" value="${iso(q.before)}"></label>
  <label>Order<select name="order"><option value="newest">newest first</option><option value="oldest"${q.order === 'oldest' ? ' selected' : ''}>oldest first</option></select></label>
  <div class="filter-buttons"><button type="submit" class="btn btn-primary">Filter</button><a class="btn btn-ghost" href="${ctx.href('/jobs')}">Clear</a></div>
</form>`;

  const findForm = html`<form method="get" action="${ctx.href('/jobs')}" class="find"><input type="search" name="id" placeholder="Find job by id" inputmode="numeric" pattern="\\s*[0-9]{1,19}\\s*" aria-label="Job id"><button class="btn" type="submit">Go</button></form>`;

  const row = (job: JobRecord) => {
    const last = job.errors[job.errors.length - 1];
    const took = job.startedAt && job.finishedAt ? duration(job.finishedAt.getTime() - job.startedAt.getTime()) : '';
    return html`<tr data-job="${job.id}">
    <td class="mono"><a href="${ctx.jobHref(job.id)}">#${job.id}</a></td>
    <td><a class="strong" href="${ctx.jobHref(job.id)}">${job.name}</a></td>
    <td><a href="${ctx.href('/jobs', { ...params, queue: job.queue, cursor: undefined })}">${job.queue}</a></td>
    <td>${stateBadge(job.state)}</td>
    <td class="num">${job.attempt}/${job.maxAttempts}</td>
    <td>${time(job.createdAt)}</td>
    <td>${job.finishedAt ? html`${time(job.finishedAt)}${took ? html` <span class="muted">(${took})</span>` : ''}` : job.state === 'pending' && job.scheduledAt.getTime() > Date.now() ? html`<span class="muted">runs</span> ${time(job.scheduledAt)}` : ''}</td>
    <td class="error-cell">${last && job.state !== 'succeeded' ? html`<span class="err-name">${last.name}</span> ${clip(last.message, 90)}` : ''}</td>
  </tr>`;
  };

  const retryAll =
    q.state === 'failed' && page.jobs.length > 0
      ? ctx.form(
          '/jobs/retry-failed',
          Object.fromEntries(
            Object.entries({ queue: q.queue, name: q.name, since: q.since?.toISOString(), before: q.before?.toISOString() }).filter(
              ([, v]) => v !== undefined,
            ),
          ) as Record<string, string>,
          'Retry all failed',
          { confirm: 'Retry every failed job that matches this filter?' },
        )
      : html``;

  const body = html`
<div class="page-head"><h1>Jobs</h1>${findForm}</div>
<section class="card">${filter}</section>
<section class="card" id="jobs-table" data-live>
  <div class="card-head"><h2>${q.state ? html`${stateBadge(q.state)} ` : ''}${q.queue ? html`in <span class="mono">${q.queue}</span>` : 'All queues'}${q.name ? html` · <span class="mono">${q.name}</span>` : ''}</h2><div class="head-actions">${retryAll}</div></div>
  ${
    page.jobs.length === 0
      ? html`<p class="empty">${q.cursor ? 'No more jobs.' : 'No job matches this filter.'}</p>`
      : html`<div class="table-wrap"><table class="jobs"><thead><tr><th>ID</th><th>Job</th><th>Queue</th><th>State</th><th class="num">Attempt</th><th>Created</th><th>Finished</th><th>Last error</th></tr></thead>
    <tbody>${page.jobs.map(row)}</tbody></table></div>`
  }
  <nav class="pager">
    ${q.cursor ? html`<a class="btn btn-ghost" href="${ctx.href('/jobs', params)}">« ${q.order === 'newest' ? 'Newest' : 'Oldest'}</a>` : html`<span></span>`}
    <span class="muted">${page.jobs.length} shown</span>
    ${page.nextCursor ? html`<a class="btn" rel="next" href="${ctx.href('/jobs', { ...params, cursor: page.nextCursor })}">Next page »</a>` : html`<span></span>`}
  </nav>
</section>`;
  return layout(ctx, { title: 'Jobs', active: 'jobs', body });
}
