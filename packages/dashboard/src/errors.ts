/**
 * The dashboard's own error codes (docs/ERRORS.md, section `dashboard`). Bad options are the core's
 * DOCKET_INVALID_OPTION; these are the failures only a dashboard has.
 */
import { definePluginErrors } from '@docket/core';

export const DASHBOARD_ERRORS = definePluginErrors('dashboard', {
  DOCKET_DASHBOARD_UNSAFE_BIND:
    'The dashboard was asked to listen on an address other than loopback without authentication; configure `auth` (a token, basic credentials or an authorize callback) or bind to 127.0.0.1.',
  DOCKET_DASHBOARD_PANEL_INVALID:
    'A panel contributed to the dashboard (by a plugin or the `panels` option) is not of the panel shape, or its id is used twice; the message names the panel and what is wrong.',
});

export class DashboardUnsafeBindError extends DASHBOARD_ERRORS.errorClass('DOCKET_DASHBOARD_UNSAFE_BIND') {}
export class DashboardPanelError extends DASHBOARD_ERRORS.errorClass('DOCKET_DASHBOARD_PANEL_INVALID') {}
