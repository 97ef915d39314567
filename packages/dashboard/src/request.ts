/**
 * One request as the pages see it: the validated query, URLs inside the dashboard, the CSRF token
 * for its forms, the shared reads, and the helpers handed to panels (`PanelContext`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Docket } from '@docket/core';
import { clip, json, stateBadge, time } from './format.js';
import { type Html, html } from './html.js';
import type { DashboardPanel, PanelContext } from './panels.js';
import type { Security } from './security.js';
import type { SharedReads } from './shared-reads.js';

const FRESH_READS: Pick<SharedReads, 'get'> = { get: (_key, read) => read() };

/** A request the dashboard refuses as malformed (400), with a message that says which parameter. */
export class BadRequest extends Error {}

export interface Site {
  readonly app: Docket;
  readonly title: string;
  readonly basePath: string;
  readonly readOnly: boolean;
  readonly live: boolean;
  readonly security: Security;
  readonly reads: SharedReads;
  readonly panels: readonly DashboardPanel[];
  readonly pageSize: number;
}

export class RequestContext implements PanelContext {
  readonly html = html;
  readonly time = time;
  readonly json = json;
  readonly state = stateBadge;
  readonly clip = clip;
  /** The posted form of an action (empty for a GET). */
  body = new URLSearchParams();
  /** The panel whose actions `actionButton` posts to (set while a panel renders). */
  panelId: string | null = null;
  private csrfToken: string | null = null;

  constructor(
    readonly site: Site,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    /** The path inside the dashboard, from `/`. */
    readonly path: string,
    readonly query: URLSearchParams,
    /** A message left by the action that redirected here. */
    readonly flash: string | null,
  ) {}

  get app(): Docket {
    return this.site.app;
  }
  /**
   * Where the page's reads go. A live refetch (the page script's, sent when a change event reached
   * every open tab at once) shares them with the other tabs' refetches of this change; a navigation
   * reads the database itself, so what a person opens is never older than their click.
   */
  get reads(): Pick<SharedReads, 'get'> {
    return this.req.headers['x-docket-live'] === '1' ? this.site.reads : FRESH_READS;
  }
  get title(): string {
    return this.site.title;
  }
  get readOnly(): boolean {
    return this.site.readOnly;
  }

  param(name: string, pattern: RegExp): string | null {
    const values = this.query.getAll(name);
    if (values.length === 0) return null;
    const value = values[0] ?? '';
    const full = new RegExp(`^(?:${pattern.source})$`, pattern.flags.replace('g', ''));
    if (values.length > 1 || !full.test(value)) throw new BadRequest(`The query parameter \`${name}\` is not valid.`);
    return value;
  }

  href(path: string, query: Readonly<Record<string, string | number | undefined>> = {}): string {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') search.set(k, String(v));
    const qs = search.toString();
    return `${this.site.basePath}${path === '/' && this.site.basePath ? '' : path}${qs ? `?${qs}` : ''}` || '/';
  }

  jobHref(id: string): string {
    return this.href(`/jobs/${encodeURIComponent(id)}`);
  }

  pageHref(panelId: string, query: Readonly<Record<string, string | number | undefined>> = {}): string {
    return this.href(`/p/${encodeURIComponent(panelId)}`, query);
  }

  /** The CSRF token for this browser (sets its cookie when it has none). */
  get csrf(): string {
    this.csrfToken ??= this.site.security.csrfToken(this.req, this.res);
    return this.csrfToken;
  }

  /** The URL of this page, to come back to after an action. */
  get here(): string {
    const qs = this.query.toString();
    return `${this.site.basePath}${this.path === '/' && this.site.basePath ? '' : this.path}${qs ? `?${qs}` : ''}` || '/';
  }

  /** A form that POSTs to `action` (a dashboard path) with the CSRF token; nothing in read-only mode. */
  form(
    action: string,
    fields: Readonly<Record<string, string>>,
    label: string,
    options: { confirm?: string; danger?: boolean; id?: string } = {},
  ): Html {
    if (this.readOnly) return html``;
    return html`<form method="post" action="${this.href(action)}" class="inline"${options.confirm ? html` data-confirm="${options.confirm}"` : ''}>
      <input type="hidden" name="_csrf" value="${this.csrf}"><input type="hidden" name="_back" value="${this.here}">${Object.entries(fields).map(
        ([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`,
      )}<button type="submit" class="btn${options.danger ? ' btn-danger' : ''}"${options.id ? html` id="${options.id}"` : ''}>${label}</button></form>`;
  }

  /** This context for one panel: its action buttons post to that panel (panels render concurrently). */
  forPanel(panelId: string): RequestContext {
    const ctx = Object.create(this) as RequestContext;
    ctx.panelId = panelId;
    return ctx;
  }

  actionButton(name: string, fields: Readonly<Record<string, string>>, label: string, options: { confirm?: string; danger?: boolean } = {}): Html {
    if (this.panelId === null) throw new Error('actionButton() is only for panels, while they render');
    return this.form(`/p/${this.panelId}/actions/${name}`, fields, label, options);
  }
}
