import type { Docket } from './app.js';
import { PluginInvalidError } from './errors.js';

/** The tie between a plugin value and the one app it was registered with. */
export interface PluginBinding {
  /** For the plugin's `apply(app)`: ties the value to `app`; refuses a second app (DOCKET_PLUGIN_INVALID). */
  bind(app: Docket): void;
  /**
   * The app the plugin was registered with, for its methods; refuses before `apply`
   * (DOCKET_PLUGIN_INVALID). `method` names the caller in the message.
   */
  app(method?: string): Docket;
  /** The app, or null before `apply`: for code that also runs unregistered (logging, flushing). */
  readonly current: Docket | null;
}

/**
 * For plugins whose factory returns one value per app — the value keeps per-app state (a task, a
 * buffer, listeners), so registering it with a second app would mix two apps' state, and its
 * methods have no app before it is registered. Written once here so that every such plugin
 * refuses both with the same code and the same advice. `factory` is the function that makes the
 * plugin (`'tracker'` for `tracker()`), `plugin` its name.
 */
export function pluginBinding(plugin: string, factory: string): PluginBinding {
  let bound: Docket | null = null;
  return {
    bind(app) {
      if (bound !== null) {
        throw new PluginInvalidError(`${plugin}: one plugin value serves one app; call ${factory}() again for another app.`, {
          details: { plugin, reason: 'second-app' },
        });
      }
      bound = app;
    },
    app(method) {
      if (bound === null) {
        throw new PluginInvalidError(
          `${plugin}${method ? `.${method}()` : ''}: the plugin is not registered with an app yet (pass it in \`plugins\`: new Docket({ plugins: [...] })).`,
          { details: { plugin, reason: 'not-registered' } },
        );
      }
      return bound;
    },
    get current() {
      return bound;
    },
  };
}
