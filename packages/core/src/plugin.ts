import type { Docket } from './app.js';
import { PluginInvalidError } from './errors.js';
import { describe } from './options.js';

/** One schema change. `up` returns SQL; `schema` is the quoted schema name to qualify tables with. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** The SQL of the change, run once in the migration's transaction; qualify every table with `ctx.schema`. */
  up(ctx: { schema: string }): string;
}

/**
 * A plugin: a name, an `apply(app)` that taps `app.hooks`, and optionally its own migrations
 * (recorded in the ledger under the plugin's name). Plugins import only `@docket/core`'s public
 * entry and reach each other only through the hook bus.
 */
export interface DocketPlugin {
  readonly name: string;
  readonly version?: string;
  /** Names of plugins that must be registered before this one. */
  readonly dependencies?: readonly string[];
  readonly migrations?: readonly Migration[];
  /** Called once by the `Docket` constructor, in the order of its `plugins` option: tap `app.hooks` here. */
  apply(app: Docket): void;
  /**
   * Never set. A function has `name` and an `apply` (Function.prototype.apply) too, so without
   * this a plugin factory passed uncalled (`plugins: [myPlugin]`) would type-check; its `call`
   * does not fit `never`. (At run time validatePlugins refuses it and names the fix.)
   */
  readonly call?: never;
}

const PLUGIN_NAME = /^[a-z0-9@][a-z0-9@/._-]{0,99}$/;

export function validatePlugins(plugins: unknown): readonly DocketPlugin[] {
  if (plugins === undefined) return [];
  if (!Array.isArray(plugins)) throw new PluginInvalidError(`\`plugins\` must be an array of plugins, got ${describe(plugins)}.`);
  const seen = new Set<string>(['core']);
  for (const [index, plugin] of plugins.entries()) {
    const where = `plugins[${index}]`;
    if (plugin === null || typeof plugin !== 'object' || typeof (plugin as DocketPlugin).apply !== 'function') {
      throw new PluginInvalidError(
        `${where} is not a plugin: expected an object with \`name\` and \`apply(app)\`, got ${describe(plugin)}. Did you forget to call the plugin factory, e.g. \`myPlugin()\` instead of \`myPlugin\`?`,
      );
    }
    const { name, dependencies, migrations } = plugin as DocketPlugin;
    if (typeof name !== 'string' || !PLUGIN_NAME.test(name)) {
      throw new PluginInvalidError(`${where} has an invalid name ${describe(name)}: use lower-case letters, digits and - _ . / @.`);
    }
    if (seen.has(name)) throw new PluginInvalidError(`Plugin '${name}' is registered twice (or uses the reserved name 'core').`);
    for (const dependency of dependencies ?? []) {
      if (!seen.has(dependency)) {
        throw new PluginInvalidError(
          `Plugin '${name}' needs plugin '${dependency}', which is not registered before it. Add it to \`plugins\` ahead of '${name}'.`,
        );
      }
    }
    for (const migration of migrations ?? []) {
      if (!Number.isInteger(migration?.version) || migration.version < 1 || typeof migration.up !== 'function') {
        throw new PluginInvalidError(`Plugin '${name}' has a migration without a positive integer \`version\` and an \`up\` function.`);
      }
    }
    seen.add(name);
  }
  return Object.freeze([...(plugins as DocketPlugin[])]);
}
