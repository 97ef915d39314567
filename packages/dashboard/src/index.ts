/**
 * @docket/dashboard — a web UI for one Docket app: queues, jobs, workers, plugin panels, live.
 *
 *   const dashboard = createDashboard(app, { basePath: '/docket', auth: { token } });
 *   server.on('request', dashboard.handle);                 // node:http (Express: app.use('/docket', dashboard.handle))
 *   await fastify.register(docketDashboard, { app, prefix: '/docket', auth: { token } });
 *   const served = await serveDashboard(app, { port: 4100 }); // alone; or `docket dashboard ./docket.config.js`
 *
 * Plugins add panels through `DASHBOARD_PANELS` (see panels.ts and the README).
 */
export { createDashboard, type Dashboard, type DashboardOptions } from './dashboard.js';
export { DASHBOARD_ERRORS, DashboardPanelError, DashboardUnsafeBindError } from './errors.js';
export { docketDashboard, type FastifyDashboardOptions } from './fastify.js';
export { duration, relative } from './format.js';
export { escapeHtml, type Html, type HtmlValue, html, isHtml, joinHtml } from './html.js';
export {
  type ActionResult,
  DASHBOARD_PANELS,
  type DashboardPanel,
  type JobPanel,
  type OverviewPanel,
  type PagePanel,
  type PanelAction,
  type PanelContext,
  type PanelContribution,
  type PanelOutput,
} from './panels.js';
export type { DashboardAuth } from './security.js';
export { type ServedDashboard, type ServeOptions, serveDashboard } from './serve.js';
