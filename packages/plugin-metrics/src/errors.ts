/**
 * The metrics plugin's own error codes (docs/ERRORS.md, section `metrics`). An invalid option is
 * the core's DOCKET_INVALID_OPTION; these are the failures only an exporter has.
 */
import { definePluginErrors } from '@docket/core';

export const METRICS_ERRORS = definePluginErrors('metrics', {
  DOCKET_METRICS_PUBLIC_BIND:
    'serve() was asked to listen on an address other than loopback without a `token`: anyone who reaches the port could read the queues. Bind to 127.0.0.1 (the default) or set `token`.',
  DOCKET_METRICS_NAME_TAKEN:
    'The registry already holds a metric of one of the plugin’s names (a second app exporting into the same registry): give each app its own `prefix` or registry.',
});

export class MetricsPublicBindError extends METRICS_ERRORS.errorClass('DOCKET_METRICS_PUBLIC_BIND') {}
export class MetricsNameTakenError extends METRICS_ERRORS.errorClass('DOCKET_METRICS_NAME_TAKEN') {}
