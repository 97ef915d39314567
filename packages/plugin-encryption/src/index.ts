/**
 * @docket/plugin-encryption — job arguments and results encrypted at rest.
 *
 *   const app = new Docket({ connection, plugins: [encryption({ keys: { k2: KEY_2, k1: KEY_1 }, currentKeyId: 'k2' })] });
 *
 * A payload codec on the core's codec hooks: every argument and result is sealed (AES-256-GCM, an
 * envelope naming its key id) before the core or a plugin stores it, and opened when it is read —
 * push, claim (on the worker's main thread: thread and process executors never see a key),
 * completion, getJob/waitForJob, and plugins' own tables through `app.codec`. Queue, name, meta,
 * errors and plugin options stay plaintext (see README).
 */
import { booleanOption, type Docket, type DocketPlugin, HOOK_STAGE, InvalidOptionError, pluginBinding, rejectUnknownKeys } from '@docket/core';
import { open, type PayloadKind, seal } from './envelope.js';
import { keyring } from './keys.js';

export const PLUGIN_NAME = 'encryption';
const VERSION = '0.1.0';

export interface EncryptionOptions {
  /**
   * Every key payloads may be encrypted with, by id (1–64 letters, digits, `_ . : -`): 32 bytes each,
   * as a Buffer/Uint8Array or base64 text. Keep a retired key here until no stored job uses it.
   */
  keys: Readonly<Record<string, string | Uint8Array>>;
  /** The key new payloads are encrypted with (one of `keys`). */
  currentKeyId: string;
  /**
   * Read payloads that are not envelopes as they are (jobs stored before the plugin was installed).
   * Default false: such a payload is refused with DOCKET_ENCRYPTION_PLAINTEXT.
   */
  allowPlaintext?: boolean;
}

const OPTION_KEYS = ['keys', 'currentKeyId', 'allowPlaintext'] as const;

export function encryption(options: EncryptionOptions): DocketPlugin {
  const where = `${PLUGIN_NAME}(options)`;
  if (options === undefined || options === null || typeof options !== 'object') {
    throw new InvalidOptionError(`${where} needs { keys, currentKeyId }.`, { details: { where } });
  }
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const ring = keyring(where, options.keys, options.currentKeyId);
  const allowPlaintext = booleanOption(where, 'allowPlaintext', options.allowPlaintext, false);

  const sealAll = (kind: PayloadKind) => async (values: unknown[]) => values.map((value) => seal(ring, kind, value));
  const openAll = (kind: PayloadKind) => async (values: unknown[]) => values.map((value) => open(ring, kind, value, allowPlaintext));

  const binding = pluginBinding(PLUGIN_NAME, 'encryption');
  return {
    name: PLUGIN_NAME,
    version: VERSION,
    apply(app: Docket) {
      // No per-app state here; tied to one app anyway: one rule for every plugin value.
      binding.bind(app);
      // Encryption is the last thing done to a payload on its way in and the first on its way out,
      // so another codec (compression, say) at the default stage composes with it.
      const last = { name: PLUGIN_NAME, stage: HOOK_STAGE.LAST };
      const first = { name: PLUGIN_NAME, stage: HOOK_STAGE.FIRST };
      app.hooks.encodeArgs.tapPromise(last, sealAll('args'));
      app.hooks.encodeResults.tapPromise(last, sealAll('result'));
      app.hooks.decodeArgs.tapPromise(first, openAll('args'));
      app.hooks.decodeResults.tapPromise(first, openAll('result'));
    },
  };
}

export { type Envelope, MARKER as ENVELOPE_MARKER } from './envelope.js';
export { ENCRYPTION_ERRORS, EncryptionKeyUnknownError, EncryptionPlaintextError, EncryptionTamperedError } from './errors.js';
