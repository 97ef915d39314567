import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const FEATURE_WORDS = /\b(cron|workflows?|leadership|leaders?|unique[_ ]?keys?|pruner?|pruning|recovery|subtasks?|chords?)\b/i;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

test('packages/core names no plugin and no plugin feature', () => {
  const hits: string[] = [];
  for (const file of sources(join(root, 'packages/core/src'))) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (FEATURE_WORDS.test(line) || /@docket\/plugin-/.test(line)) hits.push(`${file.slice(root.length)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(hits, []);
});

test('plugins and examples import only the public entry of @docket/core', () => {
  const hits: string[] = [];
  for (const top of ['packages', 'examples']) {
    for (const pkg of readdirSync(join(root, top), { withFileTypes: true })) {
      if (!pkg.isDirectory() || (top === 'packages' && (pkg.name === 'core' || pkg.name === 'testing'))) continue;
      const src = join(root, top, pkg.name);
      for (const file of sources(src).filter((f) => !f.includes('node_modules'))) {
        const text = readFileSync(file, 'utf8');
        for (const m of text.matchAll(/from\s+['"]([^'"]+)['"]/g)) {
          const spec = m[1]!;
          if (/^@docket\/core\/./.test(spec) || /packages\/core|\.\.\/core\//.test(spec)) hits.push(`${file.slice(root.length)}: ${spec}`);
        }
      }
    }
  }
  assert.deepEqual(hits, []);
});
