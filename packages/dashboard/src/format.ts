/** Formatting shared by the pages and given to panels: times, durations, JSON, state badges. */
import { type Html, type HtmlValue, html, raw } from './html.js';

const UNITS: Array<[number, string]> = [
  [86_400_000, 'd'],
  [3_600_000, 'h'],
  [60_000, 'min'],
  [1000, 's'],
];

/** "3 min ago" / "in 2 h" (the script keeps it current in the browser). */
export function relative(ms: number, now = Date.now()): string {
  const diff = ms - now;
  const abs = Math.abs(diff);
  if (abs < 1000) return 'just now';
  for (const [unit, name] of UNITS) {
    if (abs >= unit) {
      const n = Math.floor(abs / unit);
      return diff < 0 ? `${n} ${name} ago` : `in ${n} ${name}`;
    }
  }
  return 'just now';
}

/** A duration: "850 ms", "12.4 s", "3 min 20 s", "2 h 5 min". */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

export function time(value: Date | string | null | undefined): Html {
  if (value === null || value === undefined) return html`<span class="muted">–</span>`;
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return html`<span class="muted">–</span>`;
  const iso = date.toISOString();
  return html`<time datetime="${iso}" data-ts="${date.getTime()}" title="${iso.replace('T', ' ').replace('Z', ' UTC')}">${relative(date.getTime())}</time>`;
}

export function json(value: unknown): Html {
  let text: string;
  try {
    text = JSON.stringify(value, null, 2) ?? 'undefined';
  } catch {
    text = String(value);
  }
  return html`<pre class="json">${text}</pre>`;
}

export function stateBadge(state: string): Html {
  const known = /^[a-z]{1,20}$/.test(state) ? state : 'unknown';
  return html`<span class="badge badge-${known}" data-state="${state}">${state}</span>`;
}

export function clip(value: HtmlValue, max = 120): Html {
  const text = typeof value === 'string' ? value : value === null || value === undefined ? '' : String(value);
  return html`${text.length > max ? `${text.slice(0, max - 1)}…` : text}`;
}

/** 1234567 → "1,234,567" (what toLocaleString('en-US') gives, without its cost per call). */
export function thousands(n: number): string {
  const [int, frac] = String(n).split('.');
  return `${(int ?? '').replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${frac ? `.${frac}` : ''}`;
}

/** A count; `≈` when it is an estimate. */
export function count(n: number, exact = true): Html {
  const text = thousands(n);
  return exact ? html`${text}` : html`<span title="estimated from the table's statistics">≈${text}</span>`;
}

export const nothing = raw('');
