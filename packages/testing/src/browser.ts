/**
 * Headless Chromium for browser tests, from the system's packages (Debian's `chromium`), driven by
 * puppeteer-core, which downloads no browser of its own. On a machine without it, `findChromium`
 * says why, and a test passes that reason as its `skip` so the run prints it.
 */
import { accessSync, constants } from 'node:fs';
import type { Browser, LaunchOptions } from 'puppeteer-core';

/** Points the tests at a Chromium (or Chrome) binary elsewhere than the system's. */
export const CHROMIUM_ENV = 'DOCKET_CHROMIUM';
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** The browser binary to test with: `{ path }`, or `{ skip }` saying why there is none. */
export function findChromium(): { path: string; skip?: undefined } | { path?: undefined; skip: string } {
  const wanted = process.env[CHROMIUM_ENV];
  for (const path of wanted ? [wanted] : CANDIDATES) {
    try {
      accessSync(path, constants.X_OK);
      return { path };
    } catch {
      // not there
    }
  }
  return {
    skip: wanted
      ? `no executable browser at ${CHROMIUM_ENV}=${wanted}`
      : `no Chromium on this machine (looked for ${CANDIDATES.join(', ')}); install it (apt-get install chromium) or set ${CHROMIUM_ENV}`,
  };
}

/** Launches the Chromium `findChromium` found, headless (as root too: the sandbox needs a user namespace a container may not give). */
export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  const found = findChromium();
  if (!found.path) throw new Error(found.skip);
  const puppeteer = await import('puppeteer-core');
  return puppeteer.launch({
    ...options,
    executablePath: found.path,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--font-render-hinting=none', ...(options.args ?? [])],
  });
}
