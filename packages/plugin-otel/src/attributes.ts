/**
 * Span attribute names: the OpenTelemetry messaging semantic conventions where they have one,
 * `docket.*` for what is Docket's own. Kept as constants so that tests and documentation name the
 * same strings.
 */
export const ATTR = Object.freeze({
  system: 'messaging.system',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destination: 'messaging.destination.name',
  messageId: 'messaging.message.id',
  batchCount: 'messaging.batch.message_count',
  clientId: 'messaging.client.id',
  errorType: 'error.type',
  jobName: 'docket.job.name',
  attempt: 'docket.job.attempt',
  maxAttempts: 'docket.job.max_attempts',
  outcome: 'docket.job.outcome',
  retryAt: 'docket.job.retry_at',
});

/** The value of `messaging.system` on every span. */
export const MESSAGING_SYSTEM = 'docket';
