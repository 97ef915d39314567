/**
 * `pnpm format` rewrites every file Biome formats; `pnpm format --check` only reports the files
 * that differ from the formatter's output and exits non-zero when there are any (what CI runs).
 * Other arguments go to `biome format` as they are, e.g. `pnpm format --check packages/core`.
 *
 * A script of its own because pnpm appends arguments to a script's command, and
 * `biome format --write . --check` is not a command Biome knows.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2).filter((a) => a !== '--');
const check = args.includes('--check');
const rest = args.filter((a) => a !== '--check');
// Paths are taken from where pnpm was called; without any, the whole workspace.
const paths = rest.filter((a) => !a.startsWith('-')).map((p) => resolve(process.env.INIT_CWD ?? process.cwd(), p));
const flags = rest.filter((a) => a.startsWith('-'));

// The package's own launcher picks the platform binary that pnpm installed as an optional dependency.
const biome = createRequire(join(root, 'package.json')).resolve('@biomejs/biome/bin/biome');
const biomeArgs = ['format', ...(check ? [] : ['--write']), ...flags, ...(paths.length > 0 ? paths : [root])];
const result = spawnSync(process.execPath, [biome, ...biomeArgs], { cwd: root, stdio: 'inherit' });
if (result.error) throw result.error;
if (check && result.status !== 0) {
  console.error('\nSome files are not formatted: run `pnpm format` and commit the result.');
}
process.exit(result.status ?? 1);
