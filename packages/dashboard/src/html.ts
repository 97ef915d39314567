/**
 * HTML built by tagged templates: every interpolated value is escaped unless it is already `Html`
 * (made by `html` or `raw`). Job arguments, results, errors and what plugins show reach a page only through
 * this, so no stored text can become markup. `Html` is recognised by a registered symbol, not by
 * class, so a panel module that resolved another copy of this package still composes with it.
 */
const HTML = Symbol.for('docket.dashboard.html');

/** Markup that is safe to send as it is. Make it with `html` (escapes what it interpolates) or `raw`. */
export interface Html {
  readonly [HTML]: true;
  readonly text: string;
}

/** What `html` interpolates: text (escaped), numbers, markup, lists of these; null, undefined and false render nothing. */
export type HtmlValue = Html | string | number | bigint | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Text as HTML text or a quoted attribute value: `& < > " ' \`` escaped. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c);
}

export function isHtml(value: unknown): value is Html {
  return typeof value === 'object' && value !== null && (value as { [HTML]?: unknown })[HTML] === true;
}

/** Trusted markup, as it is. Only for constant strings of the dashboard's own; never for data. */
export function raw(text: string): Html {
  return { [HTML]: true, text };
}

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (isHtml(value)) return value.text;
  if (Array.isArray(value)) return value.map((v: HtmlValue) => render(v)).join('');
  return escapeHtml(String(value));
}

/** `html\`<td>${job.name}</td>\``: the template's literal parts as they are, every value escaped (or spliced when it is `Html`). */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let text = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) text += render(values[i]) + (strings[i + 1] ?? '');
  return raw(text);
}

/** The values joined by `separator`, each escaped unless it is `Html`. */
export function joinHtml(values: readonly HtmlValue[], separator: HtmlValue = ''): Html {
  const sep = render(separator);
  return raw(values.map((v) => render(v)).join(sep));
}
