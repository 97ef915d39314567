/**
 * The throughput chart: finished jobs per bucket over the window, stacked by final state, as inline
 * SVG (no script, no library; it scales with the page and prints).
 */
import type { Throughput } from '@docket/core';
import { escapeHtml, type Html, html, raw } from './html.js';

const W = 1000;
const H = 190;
const PAD = { left: 40, right: 8, top: 10, bottom: 22 };
const SERIES = [
  ['succeeded', 'c-succeeded'],
  ['failed', 'c-failed'],
  ['cancelled', 'c-cancelled'],
] as const;

/** Totals per bucket start (ms), over every queue or only `queue`. */
export function bucketTotals(t: Throughput, queue?: string): Map<number, { succeeded: number; failed: number; cancelled: number }> {
  const out = new Map<number, { succeeded: number; failed: number; cancelled: number }>();
  for (const b of t.buckets) {
    if (queue !== undefined && b.queue !== queue) continue;
    const key = b.start.getTime();
    const cur = out.get(key) ?? { succeeded: 0, failed: 0, cancelled: 0 };
    cur.succeeded += b.succeeded;
    cur.failed += b.failed;
    cur.cancelled += b.cancelled;
    out.set(key, cur);
  }
  return out;
}

/** The bucket starts covering the window, oldest first. */
function starts(t: Throughput): number[] {
  const first = Math.floor(t.since.getTime() / t.bucketMs) * t.bucketMs;
  const out: number[] = [];
  for (let s = first; s < t.until.getTime(); s += t.bucketMs) out.push(s);
  return out;
}

function niceMax(n: number): number {
  if (n <= 5) return 5;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

export function throughputChart(t: Throughput): Html {
  const totals = bucketTotals(t);
  const xs = starts(t);
  const max = niceMax(Math.max(0, ...[...totals.values()].map((v) => v.succeeded + v.failed + v.cancelled)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const bw = plotW / Math.max(xs.length, 1);
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  // Numbers and fixed class names only, built as plain strings (a chart is hundreds of elements;
  // the one text, the label, is escaped).
  let bars = '';
  xs.forEach((start, i) => {
    const v = totals.get(start);
    if (!v) return;
    let acc = 0;
    const x = (PAD.left + i * bw + bw * 0.12).toFixed(1);
    const label = `${new Date(start).toISOString().slice(11, 16)} UTC: ${v.succeeded} succeeded, ${v.failed} failed, ${v.cancelled} cancelled`;
    bars += `<g><title>${escapeHtml(label)}</title>`;
    for (const [key, cls] of SERIES) {
      const n = v[key];
      if (n === 0) continue;
      const top = y(acc + n);
      const h = y(acc) - top;
      acc += n;
      bars += `<rect class="${cls}" x="${x}" y="${top.toFixed(1)}" width="${(bw * 0.76).toFixed(1)}" height="${Math.max(h, 0.5).toFixed(1)}" rx="1"></rect>`;
    }
    bars += '</g>';
  });
  const grid = [0, 0.5, 1].map(
    (f) =>
      html`<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(max * f).toFixed(1)}" y2="${y(max * f).toFixed(1)}"></line><text class="axis" x="${PAD.left - 6}" y="${(y(max * f) + 4).toFixed(1)}" text-anchor="end">${Math.round(max * f)}</text>`,
  );
  const span = t.until.getTime() - t.since.getTime();
  const ticks = [0, 0.5, 1].map((f) => {
    const minutes = Math.round((span * (1 - f)) / 60_000);
    const anchor = f === 0 ? 'start' : f === 1 ? 'end' : 'middle';
    return html`<text class="axis" x="${(PAD.left + plotW * f).toFixed(1)}" y="${H - 6}" text-anchor="${anchor}">${minutes === 0 ? 'now' : `−${minutes} min`}</text>`;
  });
  const sum = (key: 'succeeded' | 'failed' | 'cancelled') => [...totals.values()].reduce((n, v) => n + v[key], 0);
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Jobs finished per ${Math.round(t.bucketMs / 60_000)} min over the last ${Math.round(span / 60_000)} min: ${sum('succeeded')} succeeded, ${sum('failed')} failed, ${sum('cancelled')} cancelled">${grid}${raw(bars)}${ticks}</svg>`;
}

/** A small bar sparkline of one queue's finished jobs (failures on top in red). */
export function sparkline(t: Throughput, queue: string): Html {
  const totals = bucketTotals(t, queue);
  const xs = starts(t);
  const w = 120;
  const h = 24;
  const max = Math.max(1, ...[...totals.values()].map((v) => v.succeeded + v.failed + v.cancelled));
  const bw = w / Math.max(xs.length, 1);
  let bars = '';
  xs.forEach((start, i) => {
    const v = totals.get(start);
    if (!v) return;
    const ok = ((v.succeeded + v.cancelled) / max) * h;
    const bad = (v.failed / max) * h;
    const x = (i * bw).toFixed(2);
    const width = Math.max(bw - 0.4, 0.6).toFixed(2);
    if (ok > 0) bars += `<rect class="c-succeeded" x="${x}" y="${(h - ok).toFixed(2)}" width="${width}" height="${ok.toFixed(2)}"></rect>`;
    if (bad > 0) bars += `<rect class="c-failed" x="${x}" y="${(h - ok - bad).toFixed(2)}" width="${width}" height="${bad.toFixed(2)}"></rect>`;
  });
  return html`<svg class="spark" viewBox="0 0 ${w} ${h}" aria-hidden="true">${raw(bars)}</svg>`;
}
