/**
 * The logs plugin's panel on @docket/dashboard: a job's log lines (its subtasks' too, for a root or
 * parent) on the job's page, refreshed as lines are written. Loaded only when a dashboard asks.
 */
import type { DashboardPanel } from '@docket/dashboard';
import { type JobLogsPlugin, LOGS_TOPIC } from './index.js';

/** Lines shown on a job's page: the newest ones. */
const SHOWN = 500;

export function logsPanels(plugin: JobLogsPlugin): DashboardPanel[] {
  return [
    {
      id: 'logs',
      title: 'Logs',
      placement: 'job',
      liveTopics: [LOGS_TOPIC],
      async render(ctx, job) {
        const { html } = ctx;
        const lines = await plugin.getLogs(job.id, { limit: SHOWN });
        if (lines.length === 0) return null;
        return html`${lines.length === SHOWN ? html`<p class="note">The newest ${SHOWN} lines.</p>` : ''}<div class="table-wrap"><table class="lines"><tbody>${lines.map(
          (line) => html`<tr data-level="${line.level}">
          <td class="muted" title="${line.at.toISOString()}">${line.at.toISOString().slice(11, 23)}</td>
          <td><span class="lvl lvl-${line.level}">${line.level}</span></td>
          <td>${line.jobId === job.id ? html`<span class="muted">#${line.attempt}</span>` : html`<a href="${ctx.jobHref(line.jobId)}">#${line.jobId}</a>`}</td>
          <td class="msg">${line.message}</td>
        </tr>`,
        )}</tbody></table></div>`;
      },
    },
  ];
}
