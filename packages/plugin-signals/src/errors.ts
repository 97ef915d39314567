/** The signals plugin's own error codes (docs/ERRORS.md, section `signals`). */
import { definePluginErrors } from '@docket/core';

export const SIGNALS_ERRORS = definePluginErrors('signals', {
  DOCKET_SIGNALS_NOT_LISTENING:
    'A listener asked for a signal type that is broadcast through LISTEN/NOTIFY, but the app was created with `listen: false`.',
});

export class SignalsNotListeningError extends SIGNALS_ERRORS.errorClass('DOCKET_SIGNALS_NOT_LISTENING') {}
