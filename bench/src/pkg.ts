import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Installed version of a dependency of bench/ (read from its package.json). */
export function pkgVersion(name: string): string {
  try {
    return JSON.parse(readFileSync(join(benchDir, 'node_modules', name, 'package.json'), 'utf8')).version as string;
  } catch {
    return '?';
  }
}

export function workerEntry(system: string): string {
  return join(benchDir, 'src', 'workers', `${system}.ts`);
}
