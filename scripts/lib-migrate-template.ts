/**
 * Applies @docket/core's migrations to the template database, when the core provides them.
 *
 *   node --import tsx scripts/lib-migrate-template.ts <database-url>
 *
 * Runs in its own process so that @docket/core resolves exactly as it does in the tests (in the
 * workspace, its `exports` name packages/core/src). The root package does not depend on
 * @docket/core, so it is resolved from the core package itself (a package self-reference).
 * Exits 0 with a note when the core has no `Docket` class with `migrate()` yet; any error raised
 * by the core itself fails (exit 1).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface DocketLike {
  migrate(): Promise<unknown>;
  close?(): Promise<unknown>;
}
type DocketClass = new (options: { connection: string }) => DocketLike;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const url = process.argv[2];
if (!url) {
  console.error('usage: lib-migrate-template.ts <database-url>');
  process.exit(2);
}

function skip(reason: string): never {
  console.log(`[docket test] template: ${reason}; template left empty`);
  process.exit(0);
}

const corePackage = join(root, 'packages', 'core', 'package.json');
if (!existsSync(corePackage)) skip('no packages/core');

let entry: string;
try {
  entry = createRequire(corePackage).resolve('@docket/core');
} catch {
  skip('@docket/core has no entry file yet');
}

const core = (await import(pathToFileURL(entry).href)) as { Docket?: unknown };
const Docket = core.Docket as DocketClass | undefined;
if (typeof Docket !== 'function' || typeof Docket.prototype?.migrate !== 'function') {
  skip('@docket/core exports no Docket class with migrate() yet');
}

const app = new Docket({ connection: url });
try {
  await app.migrate();
} finally {
  await app.close?.();
}
console.log('[docket test] template: migrated with @docket/core');
process.exit(0); // do not wait for anything the core may have left open
