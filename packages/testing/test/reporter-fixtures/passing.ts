// Run by reporter.test.ts under node:test with the workspace reporter (not a test of its own).
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { expectOutput } from '../../src/index.js';

describe('a suite', () => {
  test('passes', () => {});
  test('provokes a crash report on purpose', async () => {
    await expectOutput('a child that crashes on purpose', async () => {
      spawnSync(process.execPath, ['-e', 'console.error("FATAL ERROR: pretend\\nline 2\\nline 3"); process.exit(3)'], {
        stdio: ['ignore', 'inherit', 'inherit'],
      });
    });
  });
  test.skip('is skipped', () => {});
});
