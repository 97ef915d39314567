import { InvalidJobNameError, InvalidQueueNameError, InvalidSchemaError } from './errors.js';
import { describe } from './options.js';

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
const QUEUE_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
const JOB_NAME_PATTERN = /^[A-Za-z0-9_.:/-]{1,200}$/;

/**
 * Validates a schema name. Only lower-case SQL identifiers are accepted so that the name needs no
 * quoting rules beyond double quotes and can never carry SQL into the statements it is spliced into.
 */
export function assertSchemaName(schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_PATTERN.test(schema)) {
    throw new InvalidSchemaError(
      `Invalid schema name ${describe(schema)}: use 1–63 lower-case letters, digits and underscores, starting with a letter or underscore (for example 'docket').`,
      { details: { schema } },
    );
  }
  return schema;
}

/**
 * Returns `queue` when it is a valid queue name: 1–128 letters, digits or `_ - . :`.
 * @throws {@link InvalidQueueNameError} otherwise, with an example of a valid name.
 */
export function assertQueueName(queue: unknown): string {
  if (typeof queue !== 'string' || !QUEUE_PATTERN.test(queue)) {
    throw new InvalidQueueNameError(
      `Invalid queue name ${describe(queue)}: use 1–128 letters, digits or the characters _ - . : (for example 'default' or 'emails.high').`,
      { details: { queue } },
    );
  }
  return queue;
}

/**
 * Returns `name` when it is a valid job name: 1–200 letters, digits or `_ - . : /`.
 * @throws {@link InvalidJobNameError} otherwise, with an example of a valid name.
 */
export function assertJobName(name: unknown): string {
  if (typeof name !== 'string' || !JOB_NAME_PATTERN.test(name)) {
    throw new InvalidJobNameError(
      `Invalid job name ${describe(name)}: use 1–200 letters, digits or the characters _ - . : / (for example 'emails.send').`,
      { details: { name } },
    );
  }
  return name;
}

/** A double-quoted identifier; safe because every identifier passed here was validated first. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
