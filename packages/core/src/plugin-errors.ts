import { type AnyErrorCode, DocketError, ERROR_CODES, PluginInvalidError } from './errors.js';

interface ErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

/** The base class `errorClass(code)` returns; a plugin extends it once per code, with a name of its own. */
export interface PluginErrorClass<C extends AnyErrorCode> {
  new (message: string, options?: ErrorOptions): DocketError & { readonly code: C };
}

/**
 * A plugin's own error codes: the same shape as the core's catalogue (a stable code, a meaning,
 * one `DocketError` class per code), listed in docs/ERRORS.md under the plugin's section. The
 * core's errors test finds every plugin package's exported catalogue and holds it to that section.
 */
export class PluginErrorCatalogue<C extends AnyErrorCode = AnyErrorCode> {
  /** The `name` of the plugin that declared the codes. */
  readonly plugin: string;
  /** Code → what it means (the text docs/ERRORS.md repeats). */
  readonly codes: Readonly<Record<C, string>>;
  readonly #made = new Set<string>();

  constructor(plugin: string, codes: Record<C, string>) {
    this.plugin = plugin;
    this.codes = Object.freeze({ ...codes });
  }

  /**
   * The base of the one class of `code`: `export class BadThingError extends ERRORS.errorClass('DOCKET_MINE_BAD_THING') {}`.
   * Asking twice for one code is refused, so that `instanceof` names exactly one class per code.
   */
  errorClass<K extends C>(code: K): PluginErrorClass<K> {
    if (!Object.hasOwn(this.codes, code)) {
      throw new PluginInvalidError(`Plugin '${this.plugin}' did not declare the error code ${code}; add it to its definePluginErrors(...) first.`);
    }
    if (this.#made.has(code)) throw new PluginInvalidError(`Plugin '${this.plugin}' asked twice for the class of ${code}; one class per code.`);
    this.#made.add(code);
    return class extends DocketError {
      declare readonly code: K;
      constructor(message: string, options: ErrorOptions = {}) {
        super(code, message, options);
      }
    } as unknown as PluginErrorClass<K>;
  }
}

/** `'my-plugin'` → `'MY_PLUGIN'`: the part of a code that names its plugin. */
export function errorCodePrefix(plugin: string): string {
  return `DOCKET_${plugin
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')}_`;
}

/**
 * Declares a plugin's own error codes. Every code is `DOCKET_<PLUGIN>_<WHAT>` (the plugin's name
 * in upper case, `-`, `/`, `.`, `@` as `_`), so two plugins' codes cannot collide and a code says
 * whose it is; none may be a core code. Use a core code instead where the core's concept applies
 * (an invalid option is DOCKET_INVALID_OPTION whichever plugin reads it).
 */
export function definePluginErrors<const T extends Record<string, string>>(plugin: string, codes: T): PluginErrorCatalogue<keyof T & AnyErrorCode> {
  if (typeof plugin !== 'string' || plugin === '' || plugin === 'core') {
    throw new PluginInvalidError(`definePluginErrors(plugin, codes): \`plugin\` must be the plugin's name, got ${JSON.stringify(plugin)}.`);
  }
  const prefix = errorCodePrefix(plugin);
  for (const [code, meaning] of Object.entries(codes)) {
    if (!code.startsWith(prefix) || !/^[A-Z0-9_]+$/.test(code) || code.length === prefix.length) {
      throw new PluginInvalidError(
        `Plugin '${plugin}' declares the error code '${code}': its codes must look like ${prefix}SOMETHING (upper case, digits, _).`,
      );
    }
    if (Object.hasOwn(ERROR_CODES, code))
      throw new PluginInvalidError(`Plugin '${plugin}' declares ${code}, which is a core code; use the core's class instead.`);
    if (typeof meaning !== 'string' || meaning.trim() === '') {
      throw new PluginInvalidError(`Plugin '${plugin}' declares ${code} without a meaning; say in one sentence when it is raised.`);
    }
  }
  return new PluginErrorCatalogue(plugin, codes as Record<keyof T & AnyErrorCode, string>);
}
