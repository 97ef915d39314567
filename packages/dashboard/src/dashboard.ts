/**
 * The dashboard as a `node:http` request handler: `createDashboard(app, options).handle(req, res)`.
 * Mount it in your server under `basePath` (Express: `app.use(basePath, dashboard.handle)`; Fastify:
 * the plugin in ./fastify.ts), or run it alone with `serveDashboard` / `docket dashboard`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { booleanOption, type Docket, DocketError, InvalidOptionError, integerOption, rejectUnknownKeys } from '@docket/core';
import { ASSETS } from './assets.js';
import { type Html, html, isHtml } from './html.js';
import { LiveHub } from './live.js';
import { jobPage } from './pages/job.js';
import { jobsPage } from './pages/jobs.js';
import { layout, problemPage } from './pages/layout.js';
import { loginPage } from './pages/login.js';
import { overviewPage } from './pages/overview.js';
import { panelBody } from './pages/panel-sections.js';
import { workersPage } from './pages/workers.js';
import { collectPanels, type DashboardPanel } from './panels.js';
import { JOB_ID, QUEUE } from './params.js';
import { BadRequest, RequestContext, type Site } from './request.js';
import { cookies, type DashboardAuth, Security, securityHeaders } from './security.js';
import { SharedReads } from './shared-reads.js';

export interface DashboardOptions {
  /** Where the dashboard is mounted: `''` (default, the server's root) or a path like `/admin/docket`. */
  basePath?: string;
  /** How requests are authenticated; without it, every request is let in (keep it on loopback). */
  auth?: DashboardAuth;
  /** Show everything, change nothing: no buttons, and every POST is refused with 403. Default false. */
  readOnly?: boolean;
  /** Panels that belong to no plugin (plugins contribute theirs themselves). */
  panels?: readonly DashboardPanel[];
  /** The name in the title bar. Default 'Docket'. */
  title?: string;
  /** Signs CSRF tokens and login sessions; give the same one to every process behind one address. Default: random per process. */
  secret?: string;
  /** Open tabs refresh at least this often (claims and heartbeats send no notification); 0: only on notifications. Default 5000 ms. */
  refreshMs?: number;
  /** Notifications within this window make one refresh. Default 500 ms. */
  debounceMs?: number;
  /** Jobs per page of the jobs list, 10–500. Default 50. */
  pageSize?: number;
}

const OPTION_KEYS = ['basePath', 'auth', 'readOnly', 'panels', 'title', 'secret', 'refreshMs', 'debounceMs', 'pageSize'] as const;
const MAX_BODY = 64 * 1024;

export interface Dashboard {
  /**
   * The request handler. Requests outside `basePath` go to `next` when given (Express, Connect),
   * else get 404. Never throws: failures answer 500 and are logged on the app's logger.
   */
  readonly handle: (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;
  readonly basePath: string;
  /** Whether requests need authentication (`auth` is set). */
  readonly authenticated: boolean;
  /** The panels in use (plugins' and the `panels` option's), once the first request has loaded them. */
  panels(): Promise<readonly DashboardPanel[]>;
  /** Ends the live streams and the dashboard's subscriptions (not the app). */
  close(): Promise<void>;
}

type Route = (ctx: RequestContext, match: RegExpExecArray) => Promise<Html | { redirect: string }>;

export function createDashboard(app: Docket, options: DashboardOptions = {}): Dashboard {
  const where = 'createDashboard(app, options)';
  rejectUnknownKeys(where, options, OPTION_KEYS);
  if (!app || typeof app.listJobs !== 'function') throw new InvalidOptionError(`${where}: \`app\` must be a Docket app.`);
  const basePath = normaliseBase(options.basePath);
  const readOnly = booleanOption(where, 'readOnly', options.readOnly, false);
  const refreshMs = integerOption(where, 'refreshMs', options.refreshMs, 5000, { min: 0, max: 3_600_000 });
  const debounceMs = integerOption(where, 'debounceMs', options.debounceMs, 500, { min: 0, max: 60_000 });
  const pageSize = integerOption(where, 'pageSize', options.pageSize, 50, { min: 10, max: 500 });
  const title = options.title ?? 'Docket';
  if (typeof title !== 'string' || title.length === 0 || title.length > 80)
    throw new InvalidOptionError(`${where}: \`title\` must be 1–80 characters.`);
  if (options.panels !== undefined && !Array.isArray(options.panels))
    throw new InvalidOptionError(`${where}: \`panels\` must be an array of panels.`);
  const security = new Security(options.auth, options.secret, basePath || '/');
  // Reads are shared for a little longer than a burst of refreshes takes to arrive; each live
  // change event starts a new generation of them (LiveHub's `beforeChange`).
  const reads = new SharedReads(Math.max(debounceMs, 250) + 250);

  let site: Promise<Site> | null = null;
  let hub: LiveHub | null = null;
  const load = (): Promise<Site> =>
    (site ??= collectPanels(app, options.panels ?? []).then((panels) => {
      hub = new LiveHub(app, {
        debounceMs,
        refreshMs,
        topics: [...new Set(panels.flatMap((p) => p.liveTopics ?? []))],
        beforeChange: () => reads.clear(),
      });
      return { app, title, basePath, readOnly, live: true, security, reads, panels, pageSize };
    }));

  const routes: Array<[string, RegExp, Route]> = [
    ['GET', /^\/$/, (ctx) => overviewPage(ctx)],
    ['GET', /^\/jobs$/, (ctx) => jobsPage(ctx)],
    ['GET', new RegExp(`^/jobs/(${JOB_ID.source})$`), (ctx, m) => jobPage(ctx, m[1] as string)],
    ['GET', /^\/workers$/, (ctx) => workersPage(ctx)],
    ['GET', /^\/p\/([a-z][a-z0-9-]{0,39})$/, (ctx, m) => pagePanel(ctx, m[1] as string)],
    [
      'POST',
      new RegExp(`^/queues/(${QUEUE.source})/(pause|resume)$`),
      async (ctx, m) => {
        const queue = m[1] as string;
        if (m[2] === 'pause') await ctx.app.pauseQueue(queue);
        else await ctx.app.resumeQueue(queue);
        return done(ctx, `Queue ${queue} ${m[2] === 'pause' ? 'paused: workers start none of its jobs until it is resumed' : 'resumed'}.`);
      },
    ],
    [
      'POST',
      new RegExp(`^/jobs/(${JOB_ID.source})/(retry|cancel|rerun)$`),
      async (ctx, m) => {
        const id = m[1] as string;
        if (m[2] === 'retry') {
          await ctx.app.retryJob(id);
          return done(ctx, `Job #${id} will run again.`);
        }
        if (m[2] === 'cancel') {
          const job = await ctx.app.cancelJob(id);
          return done(ctx, job.state === 'cancelled' ? `Job #${id} cancelled.` : `Cancelling job #${id}: its handler was asked to stop.`);
        }
        const ref = await ctx.app.rerunJob(id);
        return { redirect: ctx.jobHref(ref.id), message: `Job #${id} pushed again as #${ref.id}.` };
      },
    ],
    [
      'POST',
      /^\/jobs\/retry-failed$/,
      async (ctx) => {
        const filter = retryFilter(ctx.body);
        const ids = await ctx.app.retryJobs(filter);
        return done(ctx, `${ids.length} failed job${ids.length === 1 ? '' : 's'} will run again.`);
      },
    ],
    [
      'POST',
      /^\/p\/([a-z][a-z0-9-]{0,39})\/actions\/([a-z][a-z0-9-]{0,39})$/,
      async (ctx, m) => {
        const panel = ctx.site.panels.find((p) => p.id === m[1]);
        const action = panel?.actions?.[m[2] as string];
        if (!panel || !action) throw new NotFound('No such panel action.');
        const result = await action(ctx.forPanel(panel.id), ctx.body);
        const target = result?.redirect && isInside(ctx.site.basePath, result.redirect) ? result.redirect : backOf(ctx);
        return { redirect: target, message: result?.message };
      },
    ],
  ];

  async function pagePanel(ctx: RequestContext, id: string): Promise<Html> {
    const panel = ctx.site.panels.find((p) => p.id === id && p.placement === 'page');
    if (!panel) throw new NotFound(`No page '${id}'.`);
    const body = await panelBody(ctx, panel);
    return layout(ctx, {
      title: panel.title,
      active: `p:${panel.id}`,
      body: html`<div class="page-head"><h1>${panel.title}</h1></div><section class="card panel" id="panel-${panel.id}" data-panel="${panel.id}" data-live>${body ?? html`<p class="empty">Nothing to show.</p>`}</section>`,
    });
  }

  async function serve(req: IncomingMessage, res: ServerResponse, path: string, search: string): Promise<void> {
    securityHeaders(res);
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    // Assets carry nothing private: served before authentication, so a login page has its styles.
    if (method === 'GET' && path.startsWith('/assets/')) return sendAsset(res, path.slice(8));
    const s = await load();
    const query = new URLSearchParams(search);
    const flash = decodeFlash(cookies(req).get('docket_flash'));
    if (flash !== null) res.appendHeader('set-cookie', `docket_flash=; Path=${basePath || '/'}; HttpOnly; SameSite=Strict; Max-Age=0`);
    const ctx = new RequestContext(s, req, res, path, query, flash);

    if (security.mode === 'token' && path === '/login') {
      if (method === 'GET') return send(res, 200, loginPage(ctx, null));
      if (method === 'POST') {
        ctx.body = await readForm(req);
        if (!security.csrfValid(req, ctx.body.get('_csrf')))
          return sendText(res, 403, 'Forbidden: the form is missing its CSRF token or it is stale; reload the page.');
        if (!security.checkLogin(ctx.body.get('token') ?? ''))
          return send(res, 401, loginPage(ctx, 'That token is not the one this dashboard was started with.'));
        res.appendHeader('set-cookie', security.sessionCookie(req));
        return redirect(res, ctx.href('/'));
      }
    }
    if (!(await security.authenticated(req))) {
      security.challenge(res);
      if (security.mode === 'token' && method === 'GET' && (req.headers.accept ?? '').includes('text/html'))
        return send(res, 401, loginPage(ctx, null));
      return sendText(res, 401, 'Unauthorized: this dashboard needs authentication.');
    }
    if (method === 'GET' && path === '/events') {
      await (hub as LiveHub).attach(res);
      return;
    }
    if (method === 'POST') {
      const logout = path === '/logout' && security.mode === 'token';
      // Read-only refuses every action whatever it carries (signing out is no action on the queue).
      if (s.readOnly && !logout) return sendText(res, 403, 'Forbidden: this dashboard is read-only; it takes no actions.');
      ctx.body = await readForm(req);
      if (!security.csrfValid(req, ctx.body.get('_csrf') ?? (req.headers['x-csrf-token'] as string | undefined) ?? null)) {
        return sendText(res, 403, 'Forbidden: the form is missing its CSRF token or it is stale; reload the page and try again.');
      }
      if (logout) {
        res.appendHeader('set-cookie', security.clearSessionCookie(req));
        return redirect(res, ctx.href('/login'));
      }
    }
    for (const [m, pattern, route] of routes) {
      const match = pattern.exec(path);
      if (!match) continue;
      if (m !== method) {
        res.setHeader('allow', m === 'GET' ? 'GET, HEAD' : m);
        return sendText(res, 405, 'Method not allowed.');
      }
      const out = await route(ctx, match);
      if (isHtml(out)) return send(res, res.statusCode === 404 ? 404 : 200, out);
      // An action changed something: what pages read before it is stale now.
      if (method === 'POST') reads.clear();
      const message = (out as { message?: string }).message;
      if (message)
        res.appendHeader('set-cookie', `docket_flash=${encodeFlash(message)}; Path=${basePath || '/'}; HttpOnly; SameSite=Strict; Max-Age=30`);
      return redirect(res, out.redirect);
    }
    throw new NotFound('There is no page at this address.');
  }

  const handle = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void => {
    // Express strips its mount path from `url` and keeps the whole one in `originalUrl`.
    const full = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const q = full.indexOf('?');
    const pathname = q < 0 ? full : full.slice(0, q);
    const search = q < 0 ? '' : full.slice(q + 1);
    let path: string;
    if (basePath === '') path = pathname;
    else if (pathname === basePath) path = '/';
    else if (pathname.startsWith(`${basePath}/`)) path = pathname.slice(basePath.length);
    else {
      if (next) {
        next();
        return;
      }
      res.statusCode = 404;
      res.end('Not found');
      return;
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      res.statusCode = 400;
      res.end('Bad request');
      return;
    }
    serve(req, res, decoded, search).catch(async (error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const s = await load().catch(() => null);
      const ctx = s ? new RequestContext(s, req, res, decoded, new URLSearchParams(), null) : null;
      if (error instanceof BadRequest || (error instanceof DocketError && /^DOCKET_INVALID_/.test(error.code))) {
        return ctx ? send(res, 400, problemPage(ctx, 'Bad request', error.message)) : sendText(res, 400, error.message);
      }
      if (error instanceof NotFound) return ctx ? send(res, 404, problemPage(ctx, 'Not found', error.message)) : sendText(res, 404, error.message);
      if (error instanceof DocketError && (error.code === 'DOCKET_JOB_STATE' || error.code === 'DOCKET_JOB_NOT_FOUND')) {
        return ctx ? send(res, 409, problemPage(ctx, 'Not done', error.message)) : sendText(res, 409, error.message);
      }
      app.logger.error('dashboard: request failed', { error, path: decoded });
      return sendText(res, 500, 'The dashboard failed to answer; the error is in the server log.');
    });
  };

  return {
    handle,
    basePath,
    authenticated: security.mode !== 'none',
    panels: async () => (await load()).panels,
    async close() {
      await (hub as LiveHub | null)?.close();
    },
  };
}

class NotFound extends Error {}

function normaliseBase(value: string | undefined): string {
  if (value === undefined || value === '' || value === '/') return '';
  if (typeof value !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+\/?$/.test(value)) {
    throw new InvalidOptionError(`createDashboard: \`basePath\` must be a path like '/admin/docket', got ${JSON.stringify(value)}.`, {
      details: { option: 'basePath' },
    });
  }
  return value.replace(/\/$/, '');
}

function isInside(basePath: string, target: string): boolean {
  return (
    (target === basePath || target.startsWith(`${basePath}/`) || (basePath === '' && target.startsWith('/'))) &&
    !target.startsWith('//') &&
    !/[\\\r\n]/.test(target)
  );
}

/** Where the action's form came from (its `_back` field), when that is a page of this dashboard. */
function backOf(ctx: RequestContext): string {
  const back = ctx.body.get('_back');
  return back && isInside(ctx.site.basePath, back) ? back : ctx.href('/');
}

function done(ctx: RequestContext, message: string): { redirect: string; message: string } {
  return { redirect: backOf(ctx), message };
}

function retryFilter(form: URLSearchParams): Parameters<Docket['retryJobs']>[0] {
  const filter: { queue?: string; name?: string; createdSince?: Date; createdBefore?: Date } = {};
  const text = (key: string) => {
    const v = form.get(key);
    return v === null || v === '' ? undefined : v;
  };
  const date = (key: string) => {
    const v = text(key);
    if (v === undefined) return undefined;
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) throw new BadRequest(`\`${key}\` is not a date.`);
    return d;
  };
  if (text('queue')) filter.queue = text('queue');
  if (text('name')) filter.name = text('name');
  if (date('since')) filter.createdSince = date('since');
  if (date('before')) filter.createdBefore = date('before');
  // The core validates the names (DOCKET_INVALID_* → 400).
  return filter;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new BadRequest('The form is too large.');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return new URLSearchParams();
  if (type !== 'application/x-www-form-urlencoded') throw new BadRequest('Actions take a form (application/x-www-form-urlencoded).');
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function encodeFlash(message: string): string {
  return Buffer.from(message.slice(0, 300)).toString('base64url');
}

function decodeFlash(value: string | undefined): string | null {
  if (!value || !/^[A-Za-z0-9_-]{1,500}$/.test(value)) return null;
  return Buffer.from(value, 'base64url').toString('utf8');
}

function send(res: ServerResponse, status: number, body: Html): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(body.text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.end(`${text}\n`);
}

function redirect(res: ServerResponse, location: string): void {
  res.statusCode = 303;
  res.setHeader('location', location);
  res.end();
}

function sendAsset(res: ServerResponse, name: string): void {
  const asset = ASSETS[name];
  if (!asset) {
    sendText(res, 404, 'Not found.');
    return;
  }
  res.statusCode = 200;
  res.setHeader('content-type', asset.type);
  // Assets change only with the package version: cached for a day.
  res.setHeader('cache-control', 'public, max-age=86400');
  res.end(asset.body);
}
