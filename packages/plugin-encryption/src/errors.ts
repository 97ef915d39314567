/**
 * The encryption plugin's own error codes (docs/ERRORS.md, section `encryption`). They describe
 * stored data, so the core's codec lets them through unwrapped: `getJob`/`waitForJob` throw them
 * and an attempt whose arguments cannot be decrypted fails with them.
 */
import { definePluginErrors } from '@docket/core';

export const ENCRYPTION_ERRORS = definePluginErrors('encryption', {
  DOCKET_ENCRYPTION_KEY_UNKNOWN: 'An encrypted payload names a key id the encryption plugin was not given; add that key to its `keys`.',
  DOCKET_ENCRYPTION_TAMPERED:
    'An encrypted payload failed authentication: it was altered, or the key under its key id is not the one it was encrypted with.',
  DOCKET_ENCRYPTION_PLAINTEXT:
    'A payload that should be encrypted is not (stored before the encryption plugin was installed, or written without it).',
});

export class EncryptionKeyUnknownError extends ENCRYPTION_ERRORS.errorClass('DOCKET_ENCRYPTION_KEY_UNKNOWN') {}
export class EncryptionTamperedError extends ENCRYPTION_ERRORS.errorClass('DOCKET_ENCRYPTION_TAMPERED') {}
export class EncryptionPlaintextError extends ENCRYPTION_ERRORS.errorClass('DOCKET_ENCRYPTION_PLAINTEXT') {}
