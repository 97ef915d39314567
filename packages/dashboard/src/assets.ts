/** The files the pages load: stylesheet, script and icon, kept as strings so that the package needs no build step of its own. */
import { createHash } from 'node:crypto';
import { APP_CSS } from './assets/app-css.js';
import { APP_JS } from './assets/app-js.js';

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#818cf8"/><stop offset=".55" stop-color="#4f46e5"/><stop offset="1" stop-color="#22c55e"/></linearGradient></defs><rect width="32" height="32" rx="8" fill="url(#g)"/></svg>`;

export const ASSETS: Readonly<Record<string, { type: string; body: string }>> = Object.freeze({
  'app.css': { type: 'text/css; charset=utf-8', body: APP_CSS },
  'app.js': { type: 'text/javascript; charset=utf-8', body: APP_JS },
  'icon.svg': { type: 'image/svg+xml', body: ICON },
});

/** Changes with the assets' content: appended to their URLs so that a browser's day-long cache never serves an old one. */
export const ASSET_VERSION = createHash('sha256').update(APP_CSS).update(APP_JS).digest('hex').slice(0, 10);
