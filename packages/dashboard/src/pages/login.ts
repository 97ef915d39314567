/** Token mode's sign-in page: the browser cannot send a bearer token on its own, so it trades it once for a session cookie. */
import { ASSET_VERSION } from '../assets.js';
import { type Html, html } from '../html.js';
import type { RequestContext } from '../request.js';

export function loginPage(ctx: RequestContext, error: string | null): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · ${ctx.site.title}</title><link rel="stylesheet" href="${ctx.href('/assets/app.css', { v: ASSET_VERSION })}"></head>
<body class="login-body"><main class="login">
<form method="post" action="${ctx.href('/login')}" class="card login-card">
  <div class="brand brand-dark"><span class="logo" aria-hidden="true"></span>${ctx.site.title}</div>
  <p class="muted">This dashboard needs the access token it was started with.</p>
  ${error ? html`<div class="flash flash-error" role="alert">${error}</div>` : ''}
  <input type="hidden" name="_csrf" value="${ctx.csrf}">
  <label>Access token<input type="password" name="token" autocomplete="current-password" required autofocus></label>
  <button class="btn btn-primary" type="submit">Sign in</button>
</form></main></body></html>
`;
}
