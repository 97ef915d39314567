/**
 * Renders the panels of one placement as sections of a page. A panel that throws shows its error
 * in its own section (the rest of the page still renders); a panel that renders null shows nothing.
 */
import type { JobRecord } from '@docket/core';
import { type Html, html, isHtml } from '../html.js';
import type { DashboardPanel } from '../panels.js';
import { BadRequest, type RequestContext } from '../request.js';

export async function panelBody(ctx: RequestContext, panel: DashboardPanel, job?: JobRecord): Promise<Html | null> {
  const pctx = ctx.forPanel(panel.id);
  try {
    const out = await (panel.placement === 'job' ? panel.render(pctx, job as JobRecord) : panel.render(pctx));
    if (out === null || out === undefined) return null;
    if (!isHtml(out)) throw new Error(`panel '${panel.id}' rendered ${typeof out}, not html\`…\` markup`);
    return out;
  } catch (error) {
    if (error instanceof BadRequest) throw error;
    ctx.app.logger.error(`dashboard: panel '${panel.id}' failed to render`, { error });
    return html`<div class="panel-error">This panel failed: ${error instanceof Error ? error.message : String(error)}</div>`;
  }
}

export async function panelSections(ctx: RequestContext, placement: 'overview' | 'job', job?: JobRecord): Promise<Html> {
  const panels = ctx.site.panels.filter((p) => p.placement === placement);
  const bodies = await Promise.all(panels.map((p) => panelBody(ctx, p, job)));
  return html`${panels.map((panel, i) => {
    const body = bodies[i];
    if (!body) return '';
    return html`<section class="card panel" id="panel-${panel.id}" data-panel="${panel.id}" data-live><h2>${panel.title}</h2>${body}</section>`;
  })}`;
}
