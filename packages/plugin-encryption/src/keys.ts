/**
 * The keyring: every key the plugin may decrypt with, by id, and the current one new payloads are
 * encrypted with. Validated when the plugin is created, so a bad key fails at startup; error
 * messages name key ids, never key material.
 */
import { InvalidOptionError } from '@docket/core';

export interface Keyring {
  readonly current: { readonly id: string; readonly key: Buffer };
  readonly byId: ReadonlyMap<string, Buffer>;
}

const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function keyring(where: string, keys: unknown, currentKeyId: unknown): Keyring {
  if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) {
    throw new InvalidOptionError(
      `${where}: \`keys\` must be an object of key id → 32-byte key (a Buffer or base64 text), e.g. { '2025-06': process.env.DOCKET_KEY_2025_06 }.`,
      { details: { where, option: 'keys' } },
    );
  }
  const byId = new Map<string, Buffer>();
  for (const [id, material] of Object.entries(keys)) {
    if (!KEY_ID.test(id)) {
      throw new InvalidOptionError(
        `${where}: key id ${JSON.stringify(id)} must be 1–64 letters, digits or \`_ . : -\` (it is stored in every envelope).`,
        {
          details: { where, option: 'keys', keyId: id },
        },
      );
    }
    byId.set(id, keyBytes(where, id, material));
  }
  if (byId.size === 0)
    throw new InvalidOptionError(`${where}: \`keys\` holds no key; give at least the current one.`, { details: { where, option: 'keys' } });
  const currentKey = typeof currentKeyId === 'string' ? byId.get(currentKeyId) : undefined;
  if (typeof currentKeyId !== 'string' || currentKey === undefined) {
    throw new InvalidOptionError(
      `${where}: \`currentKeyId\` must name one of \`keys\` (${[...byId.keys()].join(', ')}), got ${typeof currentKeyId === 'string' ? `'${currentKeyId}'` : String(currentKeyId)}.`,
      { details: { where, option: 'currentKeyId' } },
    );
  }
  return { current: { id: currentKeyId, key: currentKey }, byId };
}

function keyBytes(where: string, id: string, material: unknown): Buffer {
  let bytes: Buffer | null = null;
  if (material instanceof Uint8Array) bytes = Buffer.from(material);
  else if (typeof material === 'string' && BASE64.test(material)) bytes = Buffer.from(material, 'base64');
  if (bytes === null || bytes.length !== KEY_BYTES) {
    throw new InvalidOptionError(
      `${where}: key '${id}' must be ${KEY_BYTES} bytes, as a Buffer or base64 text (${bytes === null ? `got ${material === undefined ? 'undefined' : typeof material === 'string' ? 'text that is not base64' : typeof material}` : `got ${bytes.length} bytes`}). ` +
        "Make one with: node -e \"console.log(require('crypto').randomBytes(32).toString('base64'))\"",
      { details: { where, option: 'keys', keyId: id } },
    );
  }
  return bytes;
}
