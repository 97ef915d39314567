/**
 * The cron plugin's page on @docket/dashboard: every schedule with its next and last time and its
 * latest job, and a "Run now" button. Loaded only when a dashboard asks the plugin for its panels.
 */
import type { DashboardPanel } from '@docket/dashboard';
import type { CronPlugin } from './index.js';

const NAME = /[A-Za-z0-9_.:/-]{1,200}/;

export function cronPanels(plugin: CronPlugin): DashboardPanel[] {
  return [
    {
      id: 'schedules',
      title: 'Schedules',
      placement: 'page',
      async render(ctx) {
        const { html } = ctx;
        const schedules = await plugin.list();
        if (schedules.length === 0)
          return html`<p class="empty">No schedule yet: add one with <code>cron().schedule({ name, cron, job })</code>.</p>`;
        const never = (d: Date) => d.getUTCFullYear() >= 9999;
        return html`<div class="table-wrap"><table class="schedules"><thead><tr><th>Schedule</th><th>When</th><th>Job</th><th>Next</th><th>Last</th><th>Latest job</th><th></th></tr></thead><tbody>
        ${schedules.map(
          (s) => html`<tr data-schedule="${s.name}">
          <td class="strong">${s.name}</td>
          <td><span class="mono">${s.cron}</span> <span class="muted">${s.timezone}</span>${s.overlap ? '' : html` <span class="muted" title="a time is skipped while the previous run is open">· no overlap</span>`}</td>
          <td><span class="mono">${s.job.name}</span> <a class="tag" href="${ctx.href('/jobs', { queue: s.job.queue })}">${s.job.queue}</a></td>
          <td>${never(s.nextFireAt) ? html`<span class="muted">never</span>` : ctx.time(s.nextFireAt)}</td>
          <td>${ctx.time(s.lastFireAt)}</td>
          <td>${s.lastJobId ? html`<a class="mono" href="${ctx.jobHref(s.lastJobId)}">#${s.lastJobId}</a>` : html`<span class="muted">–</span>`}</td>
          <td class="actions">${ctx.actionButton('run-now', { name: s.name }, 'Run now', { confirm: `Push a job of schedule ${s.name} now?` })}</td>
        </tr>`,
        )}</tbody></table></div>`;
      },
      actions: {
        async 'run-now'(ctx, form) {
          const name = form.get('name') ?? '';
          if (!new RegExp(`^${NAME.source}$`).test(name)) return { message: 'That is not a schedule name.' };
          const ref = await plugin.runNow(name);
          return { message: `Schedule ${name} ran now: job #${ref.id}.`, redirect: ctx.jobHref(ref.id) };
        },
      },
    },
  ];
}
