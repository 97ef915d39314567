/**
 * `pnpm workspace-check`: holds every workspace package under packages/ and examples/ to the
 * conventions CONTRIBUTING.md describes, so that a new package cannot quietly skip them. CI runs it.
 *
 * Every package has the scripts `build` (from an empty dist), `typecheck` and `test` (its own tests
 * through the root runner). Every published package (no `"private": true`) is MIT with a copy of the
 * root LICENSE, has a CHANGELOG.md and ships it, and a plugin declares `@docket/core` as a peer
 * with `workspace:^` (published as `^<core's version>`). Prints every problem and exits 1 if any.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE_ROOTS = ['packages', 'examples'];
const REQUIRED_SCRIPTS = ['build', 'typecheck', 'test'] as const;
const EMPTY_DIST = `node -e "require('fs').rmSync('dist',{recursive:true,force:true})"`;
const CORE = '@docket/core';
const PEER_RANGE = 'workspace:^';

interface Manifest {
  name?: string;
  private?: boolean;
  license?: string;
  files?: string[];
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** What is wrong with one package directory (relative to the root, e.g. `packages/core`). */
function packageProblems(dir: string, manifest: Manifest, has: (file: string) => boolean, rootLicense: string, license: string | null): string[] {
  const problems: string[] = [];
  const scripts = manifest.scripts ?? {};
  for (const name of REQUIRED_SCRIPTS) if (!scripts[name]) problems.push(`has no "${name}" script`);
  if (scripts.build && !scripts.build.startsWith(EMPTY_DIST)) problems.push(`"build" does not start from an empty dist: begin it with ${EMPTY_DIST}`);
  if (scripts.test && scripts.test !== `pnpm -w test ${dir}/`)
    problems.push(`"test" should run its own tests through the root runner: "pnpm -w test ${dir}/"`);
  if (scripts.typecheck && scripts.typecheck !== 'tsc -p tsconfig.json --noEmit')
    problems.push(`"typecheck" should be "tsc -p tsconfig.json --noEmit"`);

  const isPlugin = manifest.name !== CORE && (Boolean(manifest.peerDependencies?.[CORE]) || /\/plugin-/.test(dir));
  if (isPlugin) {
    if (manifest.peerDependencies?.[CORE] !== PEER_RANGE)
      problems.push(`a plugin declares ${CORE} as a peer dependency "${PEER_RANGE}" (found ${JSON.stringify(manifest.peerDependencies?.[CORE])})`);
    if (manifest.dependencies?.[CORE])
      problems.push(`a plugin must not depend on ${CORE} directly (two copies of the core): make it a peer dependency`);
  }

  if (manifest.private === true) return problems;
  if (manifest.license !== 'MIT') problems.push(`published, so "license" must be "MIT" (found ${JSON.stringify(manifest.license)})`);
  if (license === null) problems.push('published, so it needs a LICENSE (a copy of the root LICENSE)');
  else if (license !== rootLicense) problems.push('its LICENSE differs from the root LICENSE');
  if (!has('CHANGELOG.md')) problems.push('published, so it needs a CHANGELOG.md (changesets writes into it)');
  if (!manifest.files?.includes('CHANGELOG.md')) problems.push('"files" does not ship CHANGELOG.md');
  return problems;
}

function main(): number {
  const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8');
  let count = 0;
  const report: string[] = [];
  for (const top of PACKAGE_ROOTS) {
    for (const entry of readdirSync(join(root, top), { withFileTypes: true })) {
      const dir = `${top}/${entry.name}`;
      const manifestPath = join(root, dir, 'package.json');
      if (!entry.isDirectory() || !existsSync(manifestPath)) continue;
      count++;
      const has = (file: string) => existsSync(join(root, dir, file));
      const license = has('LICENSE') ? readFileSync(join(root, dir, 'LICENSE'), 'utf8') : null;
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
      for (const problem of packageProblems(dir, manifest, has, rootLicense, license)) report.push(`${dir}: ${problem}`);
    }
  }
  if (report.length > 0) {
    console.error(`[workspace-check] ${report.length} problem(s) in ${count} packages:\n  ${report.join('\n  ')}`);
    return 1;
  }
  console.log(
    `[workspace-check] ${count} packages: scripts ${REQUIRED_SCRIPTS.join(', ')} everywhere; licenses, changelogs and peer ranges in order`,
  );
  return 0;
}

process.exitCode = main();
