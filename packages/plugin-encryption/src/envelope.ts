/**
 * The envelope: one encrypted payload as it is stored in a jsonb column.
 *
 *   { "docket.enc": 1, "kid": "<key id>", "iv": "<12 bytes, base64>", "ct": "<ciphertext and 16-byte tag, base64>" }
 *
 * AES-256-GCM over the payload's JSON text. The additional authenticated data binds the format
 * version, the kind of payload (arguments or result) and the key id, so an envelope cannot be
 * moved from a result into arguments, nor relabelled with another key id, without failing
 * authentication.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EncryptionKeyUnknownError, EncryptionPlaintextError, EncryptionTamperedError } from './errors.js';
import type { Keyring } from './keys.js';

export const MARKER = 'docket.enc';
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export type PayloadKind = 'args' | 'result';

export interface Envelope {
  readonly [MARKER]: typeof VERSION;
  readonly kid: string;
  readonly iv: string;
  readonly ct: string;
}

const WHAT: Record<PayloadKind, string> = { args: 'Job arguments', result: 'A job result' };

function aad(kind: PayloadKind, kid: string): Buffer {
  return Buffer.from(`${MARKER}:${VERSION}:${kind}:${kid}`, 'utf8');
}

export function seal(keyring: Keyring, kind: PayloadKind, value: unknown): Envelope {
  const { id, key } = keyring.current;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(kind, id));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { [MARKER]: VERSION, kid: id, iv: iv.toString('base64'), ct: body.toString('base64') };
}

/** Whether a stored value is (or claims to be) an envelope. */
function isMarked(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && MARKER in value;
}

export function open(keyring: Keyring, kind: PayloadKind, value: unknown, allowPlaintext: boolean): unknown {
  if (!isMarked(value)) {
    if (allowPlaintext) return value;
    throw new EncryptionPlaintextError(
      `${WHAT[kind]} stored in the database ${kind === 'args' ? 'are' : 'is'} not encrypted (pushed before the encryption plugin was installed, or written without it). ` +
        'Set `allowPlaintext: true` in encryption(options) while such jobs remain, or re-push them.',
      { details: { kind } },
    );
  }
  const { kid, iv, ct } = value;
  if (value[MARKER] !== VERSION || typeof kid !== 'string' || typeof iv !== 'string' || typeof ct !== 'string') {
    throw tampered(kind, typeof kid === 'string' ? kid : null, 'the envelope is malformed');
  }
  const key = keyring.byId.get(kid);
  if (!key) {
    throw new EncryptionKeyUnknownError(
      `${WHAT[kind]} cannot be decrypted: ${kind === 'args' ? 'they were' : 'it was'} encrypted with key '${kid}', which is not among the encryption plugin's keys (${[...keyring.byId.keys()].join(', ')}). ` +
        'Add that key to `keys` (keep retired keys until no stored job uses them).',
      { details: { kind, keyId: kid } },
    );
  }
  const ivBytes = Buffer.from(iv, 'base64');
  const body = Buffer.from(ct, 'base64');
  if (ivBytes.length !== IV_BYTES || body.length < TAG_BYTES) throw tampered(kind, kid, 'the envelope is truncated');
  let text: string;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(kind, kid));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    text = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw tampered(kind, kid, 'authentication failed');
  }
  return JSON.parse(text);
}

function tampered(kind: PayloadKind, kid: string | null, why: string): EncryptionTamperedError {
  return new EncryptionTamperedError(
    `${WHAT[kind]} cannot be decrypted: ${why}. The stored envelope was altered, or the key configured as '${kid ?? '?'}' is not the key it was encrypted with. ` +
      'Check that every process uses the same keys; an altered row cannot be recovered.',
    { details: { kind, keyId: kid } },
  );
}
