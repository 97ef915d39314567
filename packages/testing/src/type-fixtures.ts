import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** One error tsc reported on a fixture. */
export interface TypeFixtureError {
  /** The file's name inside the fixture directory. */
  readonly file: string;
  readonly line: number;
  /** `TS1234: message` and its indented elaboration. */
  readonly text: string;
}

export interface TypeFixtureReport {
  readonly errors: readonly TypeFixtureError[];
  /** Errors in files that must compile (every file not named `bad-*`). */
  readonly inGoodFiles: readonly TypeFixtureError[];
  /** For each `bad-*` file: the lines marked `// EXPECT-ERROR` and the lines tsc reported, both sorted. */
  readonly badFiles: ReadonlyArray<{ readonly file: string; readonly expected: readonly number[]; readonly reported: readonly number[] }>;
  /** The errors reported on the line of `file` that starts with `start` (trimmed), joined. */
  at(file: string, start: string): string;
}

/**
 * Type tests: runs tsc (the `typescript` the fixture directory resolves) on `dir/tsconfig.json`,
 * whose files are of two kinds: `bad-*.ts`, where each line marked `// EXPECT-ERROR` must fail
 * and no other line, and the others, which must compile. Compare `expected` with `reported`.
 */
export function checkTypeFixtures(dir: string): Promise<TypeFixtureReport> {
  const tsc = createRequire(join(dir, 'tsconfig.json')).resolve('typescript/bin/tsc');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], { cwd: dir }, (error, stdout, stderr) => {
      const output = stdout + stderr;
      if (error && !/error TS\d+/.test(output)) return reject(new Error(`tsc failed without type errors:\n${output}`));
      const errors = [...output.matchAll(/^(.+?\.ts)\((\d+),\d+\): error (TS\d+: .*(?:\n {2}.*)*)/gm)].map((m) => ({
        // split always yields at least one part, so pop finds the file's base name
        file: m[1].split(/[\\/]/).pop() ?? m[1],
        line: Number(m[2]),
        text: m[3],
      }));
      const sources = new Map<string, string[]>();
      const source = (file: string) => {
        let lines = sources.get(file);
        if (!lines) sources.set(file, (lines = readFileSync(join(dir, file), 'utf8').split('\n')));
        return lines;
      };
      const config = JSON.parse(readFileSync(join(dir, 'tsconfig.json'), 'utf8')) as { files?: string[] };
      const badFiles = (config.files ?? [])
        .filter((file) => file.startsWith('bad-'))
        .map((file) => ({
          file,
          expected: source(file).flatMap((text, i) => (text.includes('// EXPECT-ERROR') ? [i + 1] : [])),
          reported: [...new Set(errors.filter((e) => e.file === file).map((e) => e.line))].sort((a, b) => a - b),
        }));
      resolve({
        errors,
        inGoodFiles: errors.filter((e) => !e.file.startsWith('bad-')),
        badFiles,
        at(file, start) {
          const line = source(file).findIndex((text) => text.trim().startsWith(start)) + 1;
          return errors
            .filter((e) => e.file === file && e.line === line)
            .map((e) => e.text)
            .join('\n');
        },
      });
    });
  });
}
