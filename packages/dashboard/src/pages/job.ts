/** A job's page: what it was given and returned, its last progress report, each attempt with its timing and error stack, meta, actions, plugin panels. */
import { JobNotFoundError, type JobRecord } from '@docket/core';
import { clip, duration, json, stateBadge, time } from '../format.js';
import { type Html, html } from '../html.js';
import type { RequestContext } from '../request.js';
import { layout, problemPage } from './layout.js';
import { panelSections } from './panel-sections.js';

interface Attempt {
  n: number;
  startedAt: Date | null;
  endedAt: Date | null;
  outcome: string;
  error: JobRecord['errors'][number] | null;
}

/** The handler's last `ctx.progress` report: a bar, the percentage, which attempt made it and when, and its data. */
function progress(report: NonNullable<JobRecord['progress']>): Html {
  const percent = `${Math.round(report.value * 10) / 10}%`;
  return html`<progress max="100" value="${String(report.value)}">${percent}</progress> ${percent}
    <span class="muted">attempt ${report.attempt} · ${time(report.at)}</span>${report.data === null ? '' : html` <code class="mono">${clip(JSON.stringify(report.data))}</code>`}`;
}

/** Every attempt: those with an error from `errors`, the last one from the job's own columns. */
function attempts(job: JobRecord): Attempt[] {
  const out: Attempt[] = job.errors.map((e) => ({
    n: e.attempt,
    startedAt: e.startedAt ? new Date(e.startedAt) : null,
    endedAt: new Date(e.at),
    outcome:
      e.attempt === job.attempt && (job.state === 'failed' || job.state === 'cancelled')
        ? job.state
        : e.name === 'WorkerShutdownError'
          ? 'given back'
          : 'failed',
    error: e,
  }));
  const recorded = new Set(out.map((a) => a.n));
  if (job.attempt > 0 && !recorded.has(job.attempt)) {
    out.push({ n: job.attempt, startedAt: job.startedAt, endedAt: job.finishedAt, outcome: job.state, error: null });
  }
  return out.sort((a, b) => b.n - a.n || (b.endedAt?.getTime() ?? 0) - (a.endedAt?.getTime() ?? 0));
}

export async function jobPage(ctx: RequestContext, id: string): Promise<Html> {
  let job: JobRecord;
  try {
    job = await ctx.reads.get(`getJob:${id}`, () => ctx.app.getJob(id));
  } catch (error) {
    if (error instanceof JobNotFoundError) {
      ctx.res.statusCode = 404;
      return problemPage(ctx, 'Job not found', `No job with id ${id} (it may have been pruned).`);
    }
    throw error;
  }
  const runs = attempts(job);
  const finished = job.state === 'succeeded' || job.state === 'failed' || job.state === 'cancelled';
  const actions = html`${job.state === 'failed' || job.state === 'cancelled' ? ctx.form(`/jobs/${job.id}/retry`, {}, 'Retry', { id: 'action-retry' }) : ''}
    ${job.state === 'succeeded' ? ctx.form(`/jobs/${job.id}/rerun`, {}, 'Run again', { confirm: 'Push this job again as a new job?' }) : ''}
    ${finished ? '' : ctx.form(`/jobs/${job.id}/cancel`, {}, 'Cancel', { danger: true, confirm: `Cancel job #${job.id}?` })}`;

  const fact = (label: string, value: Html | string | number) => html`<div class="fact"><dt>${label}</dt><dd>${value}</dd></div>`;
  const total = job.startedAt && job.finishedAt ? duration(job.finishedAt.getTime() - job.startedAt.getTime()) : null;

  const body = html`
<div class="page-head">
  <div><div class="crumbs"><a href="${ctx.href('/jobs', { queue: job.queue })}">${job.queue}</a> / <span class="mono">#${job.id}</span></div>
  <h1>${job.name} ${stateBadge(job.state)}</h1></div>
  <div class="head-actions" id="job-actions" data-live>${actions}</div>
</div>
<section class="card" id="job-facts" data-live>
  <dl class="facts">
    ${fact('Queue', html`<a href="${ctx.href('/jobs', { queue: job.queue })}">${job.queue}</a>`)}
    ${fact('Attempt', `${job.attempt} of ${job.maxAttempts}`)}
    ${fact('Priority', job.priority)}
    ${fact('Created', time(job.createdAt))}
    ${fact('Scheduled', time(job.scheduledAt))}
    ${fact('Started', time(job.startedAt))}
    ${fact('Finished', job.finishedAt ? html`${time(job.finishedAt)}${total ? html` <span class="muted">after ${total}</span>` : ''}` : time(null))}
    ${fact('Worker', job.workerId ? html`<span class="mono">${job.workerId}</span>` : html`<span class="muted">–</span>`)}
    ${job.progress ? fact('Progress', progress(job.progress)) : ''}
    ${job.limits.timeoutMs || job.limits.memoryMb ? fact('Limits', `${job.limits.timeoutMs ? `${duration(job.limits.timeoutMs)} ` : ''}${job.limits.memoryMb ? `${job.limits.memoryMb} MB` : ''}`) : ''}
  </dl>
</section>
<div class="grid-2">
  <section class="card"><h2>Arguments</h2>${json(job.args)}</section>
  <section class="card" id="job-result" data-live><h2>Result</h2>${job.result === null ? html`<p class="empty">${job.state === 'succeeded' ? 'null' : 'No result yet.'}</p>` : json(job.result)}</section>
</div>
<section class="card" id="job-attempts" data-live>
  <h2>Attempts</h2>
  ${
    runs.length === 0
      ? html`<p class="empty">Not started yet.</p>`
      : html`<ol class="attempts">${runs.map(
          (a, i) => html`<li class="attempt" data-attempt="${a.n}">
      <div class="attempt-head"><span class="attempt-n">Attempt ${a.n}</span> ${stateBadge(a.outcome.replace(' ', '-'))}
        <span class="muted">${a.startedAt ? html`started ${time(a.startedAt)}` : ''}${a.endedAt ? html` · ended ${time(a.endedAt)}` : ''}${a.startedAt && a.endedAt ? html` · took ${duration(a.endedAt.getTime() - a.startedAt.getTime())}` : ''}</span></div>
      ${
        a.error
          ? html`<div class="error"><div class="error-title"><span class="err-name">${a.error.name}</span>${a.error.code ? html` <span class="code">${a.error.code}</span>` : ''}: ${a.error.message}</div>
        ${a.error.stack ? html`<details class="stack"${i === 0 ? ' open' : ''}><summary>Stack</summary><pre class="stack-text">${a.error.stack}</pre></details>` : ''}</div>`
          : ''
      }
    </li>`,
        )}</ol>`
  }
</section>
${await panelSections(ctx, 'job', job)}
<section class="card"><h2>Meta</h2>${Object.keys(job.meta).length === 0 ? html`<p class="empty">No meta.</p>` : json(job.meta)}</section>`;
  return layout(ctx, { title: `${job.name} #${job.id}`, active: 'jobs', body });
}
