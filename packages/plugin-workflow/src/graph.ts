/**
 * Exports a workflow run's graph with each step's state, as Mermaid (for Markdown docs) or DOT
 * (Graphviz, dashboards).
 */
import { InvalidOptionError } from '@docket/core';
import type { StepState, WorkflowRecord } from './api.js';

export type GraphFormat = 'mermaid' | 'dot';

const COLORS: Record<StepState, { fill: string; stroke: string }> = {
  blocked: { fill: '#f4f4f5', stroke: '#a1a1aa' },
  pending: { fill: '#e0f2fe', stroke: '#0284c7' },
  running: { fill: '#fef9c3', stroke: '#ca8a04' },
  waiting: { fill: '#fae8ff', stroke: '#a21caf' },
  succeeded: { fill: '#dcfce7', stroke: '#16a34a' },
  failed: { fill: '#fee2e2', stroke: '#dc2626' },
  cancelled: { fill: '#e5e7eb', stroke: '#4b5563' },
};

function mermaidText(text: string): string {
  return text.replace(/["<>&#]/g, (c) => `#${c.charCodeAt(0)};`);
}

function dotText(text: string): string {
  return text.replace(/["\\]/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
}

/** Renders a workflow record (from `getWorkflow`) as a Mermaid flowchart or a DOT digraph. */
export function renderWorkflow(record: WorkflowRecord, format: GraphFormat = 'mermaid'): string {
  if (format !== 'mermaid' && format !== 'dot') throw new InvalidOptionError(`Unknown graph format '${String(format)}': use 'mermaid' or 'dot'.`);
  const ids = new Map(record.steps.map((s, i) => [s.key, `s${i}`]));
  if (format === 'dot') {
    const lines = [
      `digraph "${dotText(`${record.name} #${record.id}`)}" {`,
      '  rankdir=LR;',
      '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ];
    lines.push(`  label="${dotText(`${record.name} #${record.id}: ${record.state}`)}"; labelloc=t;`);
    for (const step of record.steps) {
      const c = COLORS[step.state];
      lines.push(
        `  ${ids.get(step.key)} [label="${dotText(`${step.key}\n${step.name} · ${step.state}`)}", fillcolor="${c.fill}", color="${c.stroke}"];`,
      );
    }
    for (const step of record.steps) {
      for (const parent of step.parents) lines.push(`  ${ids.get(parent)} -> ${ids.get(step.key)};`);
    }
    lines.push('}');
    return `${lines.join('\n')}\n`;
  }
  const lines = ['flowchart TD'];
  lines.push(`  %% ${mermaidText(`${record.name} #${record.id}: ${record.state}`)}`);
  for (const step of record.steps) {
    lines.push(`  ${ids.get(step.key)}["${mermaidText(step.key)}<br/>${mermaidText(step.name)} · ${step.state}"]:::${step.state}`);
  }
  for (const step of record.steps) {
    for (const parent of step.parents) lines.push(`  ${ids.get(parent)} --> ${ids.get(step.key)}`);
  }
  const used = new Set(record.steps.map((s) => s.state));
  for (const [state, c] of Object.entries(COLORS)) {
    if (used.has(state as StepState)) lines.push(`  classDef ${state} fill:${c.fill},stroke:${c.stroke}`);
  }
  return `${lines.join('\n')}\n`;
}
