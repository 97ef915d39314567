/**
 * The extension point: panels and pages that other packages add to the dashboard. The dashboard
 * names no plugin; it asks each plugin of the app for its contribution under a registered symbol
 * (`Symbol.for('docket.dashboard.panels')`), so a plugin package contributes without importing the
 * dashboard from its main entry (it loads its panel module only when a dashboard asks), and the
 * `panels` option adds panels that belong to no plugin (your own, a third party's).
 */
import type { Docket, JobRecord } from '@docket/core';
import { DashboardPanelError } from './errors.js';
import type { Html, HtmlValue, html } from './html.js';

/** The key under which a plugin value offers its panels: `[DASHBOARD_PANELS]: () => panels`. */
export const DASHBOARD_PANELS: unique symbol = Symbol.for('docket.dashboard.panels') as never;

/** What a plugin value may carry: a function returning its panels (it may load them lazily). */
export type PanelContribution = () => readonly DashboardPanel[] | Promise<readonly DashboardPanel[]>;

/** What a panel renders: markup, or null to show nothing (say, a job it has nothing about). */
export type PanelOutput = Html | null | Promise<Html | null>;

interface PanelBase {
  /** Unique among the dashboard's panels: 1–40 of `a-z 0-9 -`, starting with a letter. Part of URLs. */
  readonly id: string;
  /** Heading of the section (or the page's name in the navigation). */
  readonly title: string;
  /**
   * `app.notify` topics after which pages showing this panel refresh (one LISTEN per dashboard
   * process, shared by every open tab). Job activity already refreshes every page.
   */
  readonly liveTopics?: readonly string[];
  /**
   * Things the panel's buttons do, by name (`a-z 0-9 -`): POSTed to the dashboard with its CSRF
   * token and authentication checked, refused in read-only mode. Make the button with
   * `ctx.actionButton(name, fields, label)`.
   */
  readonly actions?: Readonly<Record<string, PanelAction>>;
}

/** A section on the overview page, under the queues. */
export interface OverviewPanel extends PanelBase {
  readonly placement: 'overview';
  render(ctx: PanelContext): PanelOutput;
}

/** A section on every job's page, under its attempts. */
export interface JobPanel extends PanelBase {
  readonly placement: 'job';
  render(ctx: PanelContext, job: JobRecord): PanelOutput;
}

/** A page of its own at `<base>/p/<id>`, linked from the navigation unless `nav` is false. */
export interface PagePanel extends PanelBase {
  readonly placement: 'page';
  /** Listed in the navigation. Default true (false: a page reached from links, e.g. one item's detail). */
  readonly nav?: boolean;
  render(ctx: PanelContext): PanelOutput;
}

export type DashboardPanel = OverviewPanel | JobPanel | PagePanel;

/** What an action did: a message to show, and where to go (a dashboard path; default: back where the button was). */
export interface ActionResult {
  readonly message?: string;
  readonly redirect?: string;
}

/** Runs an action. `form` holds the button's fields as posted: validate them as untrusted input. */
export type PanelAction = (ctx: PanelContext, form: URLSearchParams) => Promise<ActionResult | undefined> | ActionResult | undefined;

/** What a panel is given to render with. */
export interface PanelContext {
  readonly app: Docket;
  /** The dashboard's title. */
  readonly title: string;
  /** True when the dashboard takes no actions: show no buttons (`actionButton` renders nothing then). */
  readonly readOnly: boolean;
  /** The page's query string as sent; read values through `param`, which validates them. */
  readonly query: URLSearchParams;
  /**
   * A query parameter matching `pattern` in full, or null when absent. A value that does not match
   * answers the request with 400 (the panel's render stops there): never render or query with an
   * unchecked parameter.
   */
  param(name: string, pattern: RegExp): string | null;
  /** A URL inside the dashboard: `href('/jobs/42')`, `href('/jobs', { state: 'failed' })`. */
  href(path: string, query?: Readonly<Record<string, string | number | undefined>>): string;
  /** The job's page. */
  jobHref(id: string): string;
  /** A page panel's URL, with query parameters. */
  pageHref(panelId: string, query?: Readonly<Record<string, string | number | undefined>>): string;
  /** A button that POSTs this panel's action `name` with `fields`; nothing in read-only mode. */
  actionButton(name: string, fields: Readonly<Record<string, string>>, label: string, options?: { confirm?: string; danger?: boolean }): Html;
  /** The escaping template tag (the same as the package's `html` export). */
  readonly html: typeof html;
  /** A time as a `<time>` element: relative ("3 min ago"), exact on hover. */
  time(value: Date | string | null | undefined): Html;
  /** A JSON value, pretty-printed and escaped, in a `<pre>`. */
  json(value: unknown): Html;
  /** A job or step state as a coloured badge. */
  state(state: string): Html;
  /** Shortens text to `max` characters (for a table cell), escaped. */
  clip(value: HtmlValue, max?: number): Html;
}

const ID = /^[a-z][a-z0-9-]{0,39}$/;
const PLACEMENTS = ['overview', 'job', 'page'];

/** Checks one panel's shape; `source` names where it came from in the error. */
export function validatePanel(panel: unknown, source: string): DashboardPanel {
  const fail = (what: string): never => {
    throw new DashboardPanelError(`Dashboard panel from ${source}: ${what}.`, { details: { source } });
  };
  if (panel === null || typeof panel !== 'object') return fail('not an object with id, title, placement and render()');
  const p = panel as Partial<DashboardPanel>;
  if (typeof p.id !== 'string' || !ID.test(p.id)) fail(`id ${JSON.stringify(p.id)} must be 1–40 of a-z, 0-9 and -, starting with a letter`);
  if (typeof p.title !== 'string' || p.title.trim() === '') fail(`panel '${p.id}' needs a title`);
  if (!PLACEMENTS.includes(p.placement as string)) fail(`panel '${p.id}' has placement ${JSON.stringify(p.placement)}; use ${PLACEMENTS.join(', ')}`);
  if (typeof p.render !== 'function') fail(`panel '${p.id}' has no render function`);
  if (
    p.liveTopics !== undefined &&
    (!Array.isArray(p.liveTopics) || !p.liveTopics.every((t) => typeof t === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(t)))
  ) {
    fail(`panel '${p.id}' has liveTopics that are not app.notify topics`);
  }
  for (const [name, action] of Object.entries(p.actions ?? {})) {
    if (!ID.test(name) || typeof action !== 'function')
      fail(`panel '${p.id}' has an action ${JSON.stringify(name)} that is not a function with a name of a-z, 0-9 and -`);
  }
  return p as DashboardPanel;
}

/** The panels of the `panels` option, then every plugin's contribution in the app's plugin order; ids unique. */
export async function collectPanels(app: Docket, explicit: readonly DashboardPanel[]): Promise<DashboardPanel[]> {
  const panels: DashboardPanel[] = explicit.map((p, i) => validatePanel(p, `the panels option [${i}]`));
  for (const plugin of app.plugins) {
    const contribution = (plugin as unknown as { [DASHBOARD_PANELS]?: unknown })[DASHBOARD_PANELS];
    if (contribution === undefined) continue;
    const source = `plugin '${plugin.name}'`;
    if (typeof contribution !== 'function')
      throw new DashboardPanelError(`Dashboard panels of ${source}: the contribution must be a function returning panels.`);
    const contributed = await (contribution as PanelContribution)();
    if (!Array.isArray(contributed)) throw new DashboardPanelError(`Dashboard panels of ${source}: the contribution returned no array.`);
    panels.push(...contributed.map((p) => validatePanel(p, source)));
  }
  const seen = new Set<string>();
  for (const panel of panels) {
    if (seen.has(panel.id))
      throw new DashboardPanelError(`Two dashboard panels have the id '${panel.id}'; ids must be unique (they are part of URLs).`);
    seen.add(panel.id);
  }
  return panels;
}
