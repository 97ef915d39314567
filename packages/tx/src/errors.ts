/**
 * What an adapter says when it is handed the wrong object. A core code: the mistake is an invalid
 * `tx` option, whichever library it comes from.
 */
import { InvalidOptionError } from '@docket/core';

export function notATransaction(adapter: string, got: string, instead: string): InvalidOptionError {
  return new InvalidOptionError(
    `${adapter}(): ${got} is not a transaction, so a push through it would commit on its own, apart from your writes. ${instead}`,
    { details: { option: 'tx' } },
  );
}
