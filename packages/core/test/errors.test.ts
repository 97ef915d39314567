import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as core from '@docket/core';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const doc = readFileSync(join(root, 'docs/ERRORS.md'), 'utf8');

type ErrorClass = new (message: string, options?: { details?: Record<string, unknown> }) => core.DocketError;
const CODE_ROW = /^\| `(DOCKET_[A-Z0-9_]+)` \| `(\w+)` \|/gm;

/** docs/ERRORS.md split into the core's table and one table per plugin (`### \`name\`` under `## Plugin codes`). */
function documented(): { core: Map<string, string>; plugins: Map<string, Map<string, string>> } {
  const [coreText, pluginText = ''] = doc.split(/^## Plugin codes$/m);
  const rows = (text: string) => new Map([...text.matchAll(CODE_ROW)].map((m) => [m[1]!, m[2]!]));
  const plugins = new Map<string, Map<string, string>>();
  for (const section of pluginText.split(/^### /m).slice(1)) {
    const name = /^`([^`]+)`/.exec(section)?.[1];
    assert.ok(name, `a plugin section heading names its plugin: ### \`name\` (got "${section.split('\n')[0]}")`);
    plugins.set(name, rows(section));
  }
  return { core: rows(coreText!), plugins };
}

/** Every exported DocketError subclass of a module (the classes users `instanceof`). */
function errorClasses(module: Record<string, unknown>): ErrorClass[] {
  return Object.values(module).filter(
    (value): value is ErrorClass => typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof core.DocketError,
  );
}

/**
 * The public entry (its source, which is what the workspace resolves to) of every package but the
 * core and the test helpers, found by directory, not by name: the plugins, and packages that are no
 * plugin but declare codes the same way (the dashboard).
 */
async function pluginPackages(): Promise<Array<{ dir: string; module: Record<string, unknown> }>> {
  const out = [];
  for (const entry of readdirSync(join(root, 'packages'), { withFileTypes: true })) {
    const index = join(root, 'packages', entry.name, 'src/index.ts');
    if (!entry.isDirectory() || entry.name === 'core' || entry.name === 'testing' || !existsSync(index)) continue;
    out.push({ dir: entry.name, module: (await import(pathToFileURL(index).href)) as Record<string, unknown> });
  }
  return out;
}

test('docs/ERRORS.md lists every core error code and no other', () => {
  assert.deepEqual([...documented().core.keys()].sort(), Object.keys(core.ERROR_CODES).sort());
});

test('every core code has its own exported DocketError class with that code', () => {
  const classes = errorClasses(core);
  const codes = classes.map((Class) => new Class('x').code).sort();
  assert.deepEqual(codes, Object.keys(core.ERROR_CODES).sort());
  const rows = documented().core;
  for (const Class of classes) {
    const error = new Class('message');
    assert.equal(error.name, Class.name);
    assert.equal(rows.get(error.code), Class.name, `${Class.name} is named in the docs on the row of ${error.code}`);
  }
});

test('every plugin package’s own codes are listed in its section of docs/ERRORS.md, each with one exported class of the same shape', async () => {
  const { plugins: sections } = documented();
  const declared = new Set<string>();
  const packages = await pluginPackages();
  assert.ok(packages.length > 0, 'found the plugin packages');
  for (const { dir, module } of packages) {
    const catalogues = Object.values(module).filter((v): v is core.PluginErrorCatalogue => v instanceof core.PluginErrorCatalogue);
    const coreValues = new Set<unknown>(Object.values(core));
    const classes = errorClasses(module).filter((Class) => !coreValues.has(Class));
    assert.ok(catalogues.length <= 1, `${dir} exports one catalogue at most`);
    const catalogue = catalogues[0];
    if (!catalogue) {
      assert.deepEqual(
        classes.map((c) => c.name),
        [],
        `${dir} exports error classes but no catalogue of their codes`,
      );
      continue;
    }
    declared.add(catalogue.plugin);
    // A plugin's catalogue is named after the plugin; another package's after its directory.
    assert.equal(catalogue.plugin, module.PLUGIN_NAME ?? dir, `${dir}: the catalogue is declared under the plugin's name`);
    const codes = Object.keys(catalogue.codes).sort();
    const rows = sections.get(catalogue.plugin);
    assert.ok(rows, `docs/ERRORS.md has a section \`### \\\`${catalogue.plugin}\\\`\` for ${dir}`);
    assert.deepEqual([...rows.keys()].sort(), codes, `the ${catalogue.plugin} section lists the plugin's codes and no other`);
    for (const code of codes) assert.ok(doc.includes(catalogue.codes[code as never]), `the meaning of ${code} is the catalogue's`);

    const instances = classes.map((Class) => new Class('message', { details: { n: 1 } }));
    assert.deepEqual(instances.map((e) => e.code).sort(), codes, `${dir} exports exactly one class per code`);
    for (const [i, error] of instances.entries()) {
      const Class = classes[i]!;
      assert.equal(error.name, Class.name);
      assert.equal(rows.get(error.code), Class.name, `${Class.name} is named in the docs on the row of ${error.code}`);
      assert.ok(error instanceof core.DocketError && error instanceof Class);
      assert.ok(core.isDocketError(error, error.code));
      assert.equal(core.isDocketError(error, 'DOCKET_INVALID_OPTION'), false);
      assert.deepEqual(error.details, { n: 1 });
      assert.ok(Object.isFrozen(error.details));
      assert.ok(!(error.code in core.ERROR_CODES), `${error.code} is not a core code`);
      assert.ok(error.code.startsWith(core.errorCodePrefix(catalogue.plugin)), `${error.code} carries the plugin's prefix`);
    }
  }
  assert.deepEqual([...sections.keys()].sort(), [...declared].sort(), 'every plugin section belongs to a plugin package that declares codes');
});

test('definePluginErrors refuses codes without the plugin prefix, core codes, and a second class for one code', () => {
  const invalid = (pattern: RegExp) => (e: unknown) => core.isDocketError(e, 'DOCKET_PLUGIN_INVALID') && pattern.test((e as Error).message);
  assert.throws(() => core.definePluginErrors('acme-tools', { DOCKET_OTHER_BAD: 'x' }), invalid(/must look like DOCKET_ACME_TOOLS_SOMETHING/));
  assert.throws(() => core.definePluginErrors('acme-tools', { DOCKET_ACME_TOOLS_lower: 'x' }), invalid(/must look like/));
  assert.throws(() => core.definePluginErrors('acme-tools', { DOCKET_ACME_TOOLS_GONE: ' ' }), invalid(/without a meaning/));
  assert.throws(() => core.definePluginErrors('invalid', { DOCKET_INVALID_OPTION: 'x' }), invalid(/is a core code/));
  assert.throws(() => core.definePluginErrors('core', {}), invalid(/must be the plugin's name/));
  const catalogue = core.definePluginErrors('acme-tools', { DOCKET_ACME_TOOLS_GONE: 'The thing is gone.' });
  class GoneError extends catalogue.errorClass('DOCKET_ACME_TOOLS_GONE') {}
  assert.throws(() => catalogue.errorClass('DOCKET_ACME_TOOLS_GONE'), invalid(/asked twice/));
  assert.throws(() => catalogue.errorClass('DOCKET_ACME_TOOLS_OTHER' as never), invalid(/did not declare/));
  const error = new GoneError('gone', { details: { id: '1' }, cause: new Error('why') });
  assert.equal(error.name, 'GoneError');
  assert.equal(error.code, 'DOCKET_ACME_TOOLS_GONE');
  assert.ok(core.isDocketError(error, 'DOCKET_ACME_TOOLS_GONE'));
  assert.equal((error.cause as Error).message, 'why');
});
