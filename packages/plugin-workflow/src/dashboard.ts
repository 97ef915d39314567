/**
 * The workflow plugin's panel on @docket/dashboard: on a job's page, the workflow it is a step of,
 * drawn as a graph with each step's state (SVG, each step linking to its job), and its place in a
 * parent/subtask tree. Loaded only when a dashboard asks the plugin for its panels.
 */

import type { JobRecord } from '@docket/core';
import type { DashboardPanel, Html, PanelContext } from '@docket/dashboard';
import { getSubtasks, getWorkflow, type WorkflowRecord } from './api.js';
import { META, metaString } from './meta.js';

const NODE_W = 196;
const NODE_H = 46;
const GAP_X = 56;
const GAP_Y = 18;
const PAD = 8;

/** Each step's column: 0 for a step without parents, else one past its deepest parent. */
function layers(record: WorkflowRecord): Map<string, number> {
  const layer = new Map<string, number>();
  // Steps are stored in declaration order, and a step may only run after steps declared before it.
  for (const step of record.steps) layer.set(step.key, step.parents.length === 0 ? 0 : 1 + Math.max(...step.parents.map((p) => layer.get(p) ?? 0)));
  return layer;
}

function clipText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The run as an SVG graph: columns by depth, edges parent → child, nodes coloured by state (classes in the dashboard's stylesheet). */
export function workflowGraph(ctx: PanelContext, record: WorkflowRecord, currentJobId: string | null): Html {
  const { html } = ctx;
  const layer = layers(record);
  const columns: string[][] = [];
  for (const step of record.steps) (columns[layer.get(step.key) ?? 0] ??= []).push(step.key);
  const pos = new Map<string, { x: number; y: number }>();
  const tallest = Math.max(...columns.map((c) => c.length));
  columns.forEach((keys, col) => {
    // Each column centred against the tallest one.
    const offset = ((tallest - keys.length) * (NODE_H + GAP_Y)) / 2;
    keys.forEach((key, row) => {
      pos.set(key, { x: PAD + col * (NODE_W + GAP_X), y: PAD + offset + row * (NODE_H + GAP_Y) });
    });
  });
  const width = PAD * 2 + columns.length * NODE_W + (columns.length - 1) * GAP_X;
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y;
  const edges = record.steps.flatMap((step) =>
    step.parents.map((parent) => {
      const a = pos.get(parent);
      const b = pos.get(step.key);
      if (!a || !b) return '';
      const x1 = a.x + NODE_W;
      const y1 = a.y + NODE_H / 2;
      const x2 = b.x;
      const y2 = b.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      return html`<path class="edge" marker-end="url(#arrow)" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 4},${y2}"></path>`;
    }),
  );
  const nodes = record.steps.map((step) => {
    const p = pos.get(step.key) ?? { x: 0, y: 0 };
    const current = step.jobId !== null && step.jobId === currentJobId;
    const box = html`<rect x="${p.x}" y="${p.y}" width="${NODE_W}" height="${NODE_H}" rx="8"></rect>
      <text x="${p.x + 12}" y="${p.y + 19}" font-weight="600">${clipText(step.key, 24)}</text>
      <text class="sub" x="${p.x + 12}" y="${p.y + 35}">${clipText(`${step.name} · ${step.state}`, 30)}</text>
      <title>${step.key}: ${step.name}, ${step.state}${step.jobId ? ` (job #${step.jobId})` : ''}</title>`;
    const attrs = html`class="node${current ? ' current' : ''}" data-step="${step.key}" data-state="${step.state}"`;
    return step.jobId ? html`<a href="${ctx.jobHref(step.jobId)}"><g ${attrs}>${box}</g></a>` : html`<g ${attrs}>${box}</g>`;
  });
  return html`<svg class="graph" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="Workflow ${record.name}: ${record.steps.length} steps">
    <defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#94a3b8"></path></marker></defs>
    ${edges}${nodes}</svg>`;
}

async function subtaskTree(ctx: PanelContext, job: JobRecord): Promise<Html | null> {
  const { html } = ctx;
  const parentId = metaString(job.meta, META.parentId);
  const rootId = metaString(job.meta, META.rootId);
  const summary = await getSubtasks(ctx.app, job.id);
  if (!parentId && !summary) return null;
  const children = summary?.children ?? [];
  return html`<h3 class="sub-h">Subtasks</h3><ul class="tree">
    ${rootId && rootId !== parentId ? html`<li>Top-level job <a class="mono" href="${ctx.jobHref(rootId)}">#${rootId}</a></li>` : ''}
    ${parentId ? html`<li>Parent <a class="mono" href="${ctx.jobHref(parentId)}">#${parentId}</a></li>` : ''}
    ${
      summary
        ? html`<li><span class="strong">This job</span>: ${summary.total} subtask${summary.total === 1 ? '' : 's'}, ${summary.open} open, ${summary.failed} failed
      <ul>${children.map((c) => html`<li><a class="mono" href="${ctx.jobHref(c.id)}">#${c.id}</a> ${c.state ? ctx.state(c.state) : ctx.state('open')}</li>`)}</ul></li>`
        : ''
    }
  </ul>`;
}

export function workflowPanels(): DashboardPanel[] {
  return [
    {
      id: 'workflow',
      title: 'Workflow',
      placement: 'job',
      async render(ctx, job) {
        const { html } = ctx;
        const runId = metaString(job.meta, META.workflowId);
        const record = runId ? await getWorkflow(ctx.app, runId).catch(() => null) : null;
        const tree = await subtaskTree(ctx, job);
        if (!record && !tree) return null;
        return html`${
          record
            ? html`<div class="panel-head"><span class="strong">${record.name}</span> <span class="muted">${record.kind} #${record.id}</span> ${ctx.state(record.state)}
            <span class="muted">· step <span class="mono">${String(job.meta[META.workflowStep] ?? '')}</span> · started ${ctx.time(record.createdAt)}${record.finishedAt ? html` · ended ${ctx.time(record.finishedAt)}` : ''}</span></div>
            <div class="graph-wrap" data-workflow="${record.id}">${workflowGraph(ctx, record, job.id)}</div>
            ${record.error ? html`<p class="note">First step that did not succeed: <span class="mono">${record.error.step}</span> (${record.error.state})${record.error.error ? html`: ${record.error.error.message}` : ''}</p>` : ''}`
            : ''
        }${tree ?? ''}`;
      },
    },
  ];
}
