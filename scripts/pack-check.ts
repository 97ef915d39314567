/**
 * Pack check: proves that packed workspace packages install into an empty project outside the
 * workspace, with only their declared dependencies, and run a job there with plain `node`.
 *
 *   pnpm pack-check                                   # packages/core, the default job script
 *   pnpm pack-check packages/core packages/plugin-x   # several packages, installed together
 *   pnpm pack-check --keep                            # keep the temporary project to look at
 *
 * For each package, in order: `pnpm --filter <dir> build`, `pnpm pack` into a temporary
 * directory. Then a fresh project (`npm init -y`, `"type": "module"`) outside the workspace gets
 * `npm install <tarballs>` and nothing else, and a plain `.mjs` script runs in it with `node`
 * (no tsx, no custom conditions) against a fresh, empty database in DATABASE_URL.
 *
 * In the workspace a package's `exports` name its TypeScript source (so code run with tsx needs
 * no build); `publishConfig` replaces them with `dist/` when it is packed. Along the way it checks
 * that the packed manifests hold no `workspace:` ranges, that every `exports`, `main`, `types` and
 * `bin` target exists in the installed package and none is source, that `@docket/...` resolves
 * inside the temporary project, and that the project's node_modules holds nothing beyond the
 * closure of the packages' declared dependencies.
 *
 * Database: a fresh database from @docket/testing's createTestDatabase({ template: false }):
 * on the `pnpm test` run's server, else on DATABASE_URL's server, else on an embedded PostgreSQL
 * started for the check (and stopped after). Pass `databaseUrl` to use a database as it is.
 *
 * Plugins reuse it: `packCheck({ packages: ['packages/core', 'packages/plugin-cron'], script })`
 * where the script composes the plugin and prints what `expect` matches.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
// The root package does not depend on @docket/testing; import its source directly (tsx runs it).
import { createTestDatabase, getTestServer } from '../packages/testing/src/index.js';

export const WORKSPACE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The default script: migrate, push a job, run a Worker, wait for the result, print it as JSON. */
export const CORE_JOB_SCRIPT = `
import { Docket, Worker, defineJob } from '@docket/core';

const greet = defineJob({ name: 'greet', queue: 'pack-check', maxAttempts: 2 }, async ({ name }) => \`Hello, \${name}!\`);

const app = new Docket({ connection: process.env.DATABASE_URL });
try {
  const applied = await app.migrate();
  console.error(\`migrated: \${applied.map((m) => m.owner + '@' + m.version).join(', ') || 'nothing to do'}\`);
  const worker = new Worker(app, { jobs: [greet], queues: { 'pack-check': { concurrency: 2 } } });
  await worker.start();
  try {
    const ref = await app.push(greet.withArgs({ name: 'packed world' }));
    const done = await app.waitForJob(ref, { timeoutMs: 20000 });
    console.log(JSON.stringify({ state: done.state, result: done.result, attempt: done.attempt }));
    if (done.state !== 'succeeded') process.exitCode = 1;
  } finally {
    await worker.stop({ timeoutMs: 5000 });
  }
} finally {
  await app.close();
}
`;

export const CORE_JOB_EXPECT = /^\{"state":"succeeded","result":"Hello, packed world!","attempt":1\}$/m;

export interface PackCheckOptions {
  /** Workspace package directories, relative to the workspace root (e.g. 'packages/core'); built and packed in this order. */
  packages: readonly string[];
  /** Source of an ES module run with `node` in the temporary project; DATABASE_URL names an empty database. */
  script: string;
  /** What the script's stdout must match (a RegExp, or a string it must contain). Default: only exit code 0. */
  expect?: RegExp | string;
  /** Run each package's `build` script first. Default true. */
  build?: boolean;
  /** Use this database as it is instead of creating a fresh one. */
  databaseUrl?: string;
  /** Keep the temporary directory (its path is in the result). Default false. */
  keep?: boolean;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
  /** Limit for each command (build, pack, install, script). Default 180000 ms. */
  commandTimeoutMs?: number;
}

export interface PackCheckResult {
  /** The packed tarballs (inside `dir`). */
  tarballs: string[];
  /** The temporary project the tarballs were installed into (inside `dir`). */
  projectDir: string;
  /** The temporary directory; removed unless `keep`. */
  dir: string;
  /** name@version of every package installed in the project's node_modules. */
  installed: string[];
  stdout: string;
  stderr: string;
}

/** Set once packCheck has asked @docket/testing for a server (the caller stops it: getTestServer().stop()). */
let serverUsed = false;

export class PackCheckError extends Error {
  override readonly name = 'PackCheckError';
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** An environment without the workspace's package-manager and test-runner variables: a user's shell. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const k = key.toLowerCase();
    if (k.startsWith('npm_') || k.startsWith('pnpm_') || k === 'init_cwd') continue;
    if (key === 'NODE_OPTIONS' || key === 'NODE_TEST_CONTEXT' || key === 'NODE_PATH' || key === 'TSX_TSCONFIG_PATH') continue;
    if (key.startsWith('DOCKET_') || key === 'DATABASE_URL') continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: process.platform === 'win32',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new PackCheckError(
          `\`${command} ${args.join(' ')}\` in ${options.cwd} did not finish within ${options.timeoutMs} ms.\n${tail(stdout, stderr)}`,
        ),
      );
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new PackCheckError(`Could not run \`${command}\`: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

function tail(stdout: string, stderr: string, lines = 40): string {
  const pick = (text: string) => text.trimEnd().split('\n').slice(-lines).join('\n');
  return [stdout.trim() && `--- stdout ---\n${pick(stdout)}`, stderr.trim() && `--- stderr ---\n${pick(stderr)}`].filter(Boolean).join('\n');
}

async function mustRun(
  what: string,
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new PackCheckError(
      `${what} failed: \`${command} ${args.join(' ')}\` exited ${result.code} (in ${options.cwd}).\n${tail(result.stdout, result.stderr)}`,
    );
  }
  return result;
}

interface Manifest {
  name: string;
  version: string;
  exports?: unknown;
  main?: string;
  types?: string;
  bin?: string | Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies?: Record<string, string>;
}

async function readManifest(path: string): Promise<Manifest> {
  return JSON.parse(await readFile(path, 'utf8')) as Manifest;
}

/** Every file path an `exports` map (or main/types) points at, with the condition path for messages. */
function exportTargets(manifest: Manifest): Array<{ where: string; target: string }> {
  const out: Array<{ where: string; target: string }> = [];
  const walk = (value: unknown, where: string) => {
    if (typeof value === 'string') out.push({ where, target: value });
    else if (Array.isArray(value)) for (const [i, v] of value.entries()) walk(v, `${where}[${i}]`);
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, `${where}.${k}`);
  };
  walk(manifest.exports, 'exports');
  if (manifest.main) out.push({ where: 'main', target: manifest.main });
  if (manifest.types) out.push({ where: 'types', target: manifest.types });
  const bin = typeof manifest.bin === 'string' ? { [manifest.name]: manifest.bin } : (manifest.bin ?? {});
  for (const [name, target] of Object.entries(bin)) out.push({ where: `bin.${name}`, target });
  return out;
}

/** TypeScript source (not a declaration file): what the workspace manifest names, never the packed one. */
const isSource = (target: string) => /\.[cm]?ts$/.test(target) && !/\.d\.[cm]?ts$/.test(target);

async function checkInstalledPackage(projectDir: string, manifest: Manifest): Promise<void> {
  const dir = join(projectDir, 'node_modules', ...manifest.name.split('/'));
  const installed = await readManifest(join(dir, 'package.json'));
  const ranges = { ...installed.dependencies, ...installed.optionalDependencies, ...installed.peerDependencies };
  for (const [dep, range] of Object.entries(ranges)) {
    if (range.startsWith('workspace:') || range.startsWith('link:') || range.startsWith('file:')) {
      throw new PackCheckError(`${manifest.name}: the packed package.json depends on ${dep}@${range}, which only resolves inside the workspace.`);
    }
  }
  for (const { where, target } of exportTargets(installed)) {
    if (isSource(target)) {
      throw new PackCheckError(`${manifest.name}: the packed ${where} points at the source ${target}; publishConfig must name the build (dist/).`);
    }
    if (target.includes('*')) continue;
    if (!existsSync(join(dir, target))) {
      throw new PackCheckError(
        `${manifest.name}: ${where} points at ${target}, which is not in the packed package (is it in "files", and was the package built?).`,
      );
    }
  }
}

/** name@version of every package under node_modules (scoped ones included), and their manifests. */
async function listInstalled(projectDir: string): Promise<Map<string, Manifest>> {
  const root = join(projectDir, 'node_modules');
  const found = new Map<string, Manifest>();
  if (!existsSync(root)) return found;
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const dirs = entry.name.startsWith('@')
      ? (await readdir(join(root, entry.name), { withFileTypes: true })).map((e) => join(entry.name, e.name))
      : [entry.name];
    for (const d of dirs) {
      const manifestPath = join(root, d, 'package.json');
      if (existsSync(manifestPath)) {
        const manifest = await readManifest(manifestPath);
        found.set(manifest.name, manifest);
      }
    }
  }
  return found;
}

/** Fails when node_modules holds a package that no installed package declares (transitively). */
function checkOnlyDeclared(roots: readonly string[], installed: Map<string, Manifest>): void {
  const reachable = new Set<string>();
  const visit = (name: string) => {
    if (reachable.has(name)) return;
    reachable.add(name);
    const manifest = installed.get(name);
    if (!manifest) return;
    // An optional peer (a framework the package can plug into) is the user's to install, or not: npm leaves it out.
    const peers = Object.keys(manifest.peerDependencies ?? {}).filter((dep) => manifest.peerDependenciesMeta?.[dep]?.optional !== true);
    for (const dep of [...Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies }), ...peers]) visit(dep);
  };
  roots.forEach(visit);
  const extra = [...installed.keys()].filter((name) => !reachable.has(name));
  if (extra.length > 0) {
    throw new PackCheckError(`node_modules holds packages nothing declares: ${extra.join(', ')}.`);
  }
  const missing = [...reachable].filter((name) => !installed.has(name));
  if (missing.length > 0) throw new PackCheckError(`Declared but not installed: ${missing.join(', ')}.`);
}

function matchesExpectation(stdout: string, expect: RegExp | string): boolean {
  return typeof expect === 'string' ? stdout.includes(expect) : expect.test(stdout);
}

export async function packCheck(options: PackCheckOptions): Promise<PackCheckResult> {
  const { packages, script, expect, build = true, keep = false, commandTimeoutMs = 180_000 } = options;
  const log = options.log ?? (() => {});
  if (!Array.isArray(packages) || packages.length === 0) throw new PackCheckError('packCheck: `packages` must list at least one package directory.');
  const timeoutMs = commandTimeoutMs;
  const workspaceEnv = { ...process.env };
  delete workspaceEnv.NODE_OPTIONS;
  delete workspaceEnv.NODE_TEST_CONTEXT;

  const dir = await mkdtemp(join(tmpdir(), 'docket-pack-check-'));
  if (dir.startsWith(WORKSPACE_ROOT + sep)) throw new PackCheckError(`The temporary directory ${dir} is inside the workspace; set TMPDIR elsewhere.`);
  const tarballDir = join(dir, 'tarballs');
  const projectDir = join(dir, 'project');
  await mkdir(tarballDir);
  await mkdir(projectDir);
  let database: { url: string; drop(): Promise<void> } | undefined;
  try {
    // 1. Build and pack each package.
    const tarballs: string[] = [];
    const manifests: Manifest[] = [];
    for (const pkg of packages) {
      const pkgDir = resolve(WORKSPACE_ROOT, pkg);
      const manifestPath = join(pkgDir, 'package.json');
      if (!existsSync(manifestPath)) throw new PackCheckError(`No package at ${relative(WORKSPACE_ROOT, pkgDir) || '.'} (no package.json).`);
      const manifest = await readManifest(manifestPath);
      manifests.push(manifest);
      if (build) {
        log(`build  ${manifest.name}`);
        await mustRun(`Building ${manifest.name}`, 'pnpm', ['--filter', manifest.name, 'run', 'build'], {
          cwd: WORKSPACE_ROOT,
          env: workspaceEnv,
          timeoutMs,
        });
      }
      const destination = join(tarballDir, String(tarballs.length));
      await mkdir(destination);
      await mustRun(`Packing ${manifest.name}`, 'pnpm', ['pack', '--pack-destination', destination], { cwd: pkgDir, env: workspaceEnv, timeoutMs });
      const packed = (await readdir(destination)).filter((f) => f.endsWith('.tgz'));
      if (packed.length !== 1) throw new PackCheckError(`pnpm pack of ${manifest.name} left ${packed.length} tarballs in ${destination}.`);
      tarballs.push(join(destination, packed[0]));
      log(`pack   ${manifest.name} → ${packed[0]}`);
    }

    // 2. An empty project outside the workspace; install the tarballs and nothing else.
    await mustRun('npm init', 'npm', ['init', '-y'], { cwd: projectDir, timeoutMs });
    const projectManifestPath = join(projectDir, 'package.json');
    const projectManifest = JSON.parse(await readFile(projectManifestPath, 'utf8')) as Record<string, unknown>;
    await writeFile(
      projectManifestPath,
      `${JSON.stringify({ ...projectManifest, name: 'docket-pack-check', private: true, type: 'module' }, null, 2)}\n`,
    );
    log(`npm install ${tarballs.length} tarball(s) into ${projectDir}`);
    await mustRun('npm install', 'npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: projectDir, timeoutMs });

    const installedManifests = await listInstalled(projectDir);
    const installed = [...installedManifests.values()].map((m) => `${m.name}@${m.version}`).sort();
    log(`installed ${installed.join(', ')}`);
    for (const manifest of manifests) await checkInstalledPackage(projectDir, manifest);
    checkOnlyDeclared(
      manifests.map((m) => m.name),
      installedManifests,
    );

    // Each package must resolve inside the project, never back into the workspace.
    const resolver = `for (const name of ${JSON.stringify(manifests.map((m) => m.name))}) console.log(import.meta.resolve(name));`;
    const resolved = await mustRun('Resolving the packages', process.execPath, ['--input-type=module', '-e', resolver], {
      cwd: projectDir,
      timeoutMs,
    });
    for (const line of resolved.stdout.trim().split('\n')) {
      const path = fileURLToPath(line);
      if (!path.startsWith(join(projectDir, 'node_modules') + sep)) {
        throw new PackCheckError(`A package resolved outside the temporary project: ${path}`);
      }
    }

    // 3. A database for the script.
    let url = options.databaseUrl;
    if (!url) {
      serverUsed = true;
      const db = await createTestDatabase({ template: false });
      database = db;
      url = db.url;
    }

    // 4. Run the script with plain node.
    const scriptPath = join(projectDir, 'check.mjs');
    await writeFile(scriptPath, script);
    log('node check.mjs');
    const result = await run(process.execPath, [scriptPath], { cwd: projectDir, env: cleanEnv({ DATABASE_URL: url }), timeoutMs });
    if (result.code !== 0) {
      throw new PackCheckError(`The script exited ${result.code} in ${projectDir}.\n${tail(result.stdout, result.stderr)}`);
    }
    if (expect !== undefined && !matchesExpectation(result.stdout, expect)) {
      throw new PackCheckError(`The script's output does not match ${String(expect)}.\n${tail(result.stdout, result.stderr)}`);
    }
    return { tarballs, projectDir, dir, installed, stdout: result.stdout, stderr: result.stderr };
  } finally {
    await database?.drop().catch(() => {});
    if (!keep) await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------------
// Command line: `pnpm pack-check [--keep] [package dirs...]`

async function main(): Promise<number> {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  const keep = args.includes('--keep');
  const unknown = args.filter((a) => a.startsWith('-') && a !== '--keep');
  if (unknown.length > 0) {
    console.error(`usage: pack-check [--keep] [package dirs...]   (unknown: ${unknown.join(' ')})`);
    return 2;
  }
  // The core always goes in (plugins have it as a peer); the default script runs a core job.
  const packages = [...new Set(['packages/core', ...args.filter((a) => !a.startsWith('-')).map((p) => p.replace(/\/+$/, ''))])];
  const started = performance.now();
  try {
    const result = await packCheck({
      packages,
      script: CORE_JOB_SCRIPT,
      expect: CORE_JOB_EXPECT,
      keep,
      log: (line) => console.log(`[pack-check] ${line}`),
    });
    console.log(`[pack-check] output: ${result.stdout.trim()}`);
    if (keep) console.log(`[pack-check] kept ${result.dir}`);
    console.log(`[pack-check] ok in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    if (serverUsed) await (await getTestServer()).stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`[pack-check] ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
