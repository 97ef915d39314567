/** The frame of every page: head, navigation (with the plugins' pages), flash message, live indicator. */
import { ASSET_VERSION } from '../assets.js';
import { type Html, html } from '../html.js';
import type { RequestContext } from '../request.js';

export function layout(ctx: RequestContext, options: { title: string; active: string; body: Html }): Html {
  const { site } = ctx;
  const nav: Array<[string, string, string]> = [
    ['overview', 'Overview', ctx.href('/')],
    ['jobs', 'Jobs', ctx.href('/jobs')],
    ['workers', 'Workers', ctx.href('/workers')],
    ...site.panels
      .filter((p) => p.placement === 'page' && p.nav !== false)
      .map((p): [string, string, string] => [`p:${p.id}`, p.title, ctx.pageHref(p.id)]),
  ];
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${options.title} · ${site.title}</title>
<link rel="stylesheet" href="${ctx.href('/assets/app.css', { v: ASSET_VERSION })}">
<link rel="icon" href="${ctx.href('/assets/icon.svg', { v: ASSET_VERSION })}" type="image/svg+xml">
<script src="${ctx.href('/assets/app.js', { v: ASSET_VERSION })}" defer></script>
</head>
<body data-base="${site.basePath}" data-live="${site.live ? 'on' : 'off'}">
<header class="topbar">
  <a class="brand" href="${ctx.href('/')}"><span class="logo" aria-hidden="true"></span>${site.title}</a>
  <nav>${nav.map(([key, label, href]) => html`<a href="${href}"${key === options.active ? html` class="active" aria-current="page"` : ''}>${label}</a>`)}</nav>
  <div class="topbar-right">
    ${site.readOnly ? html`<span class="pill pill-muted" title="This dashboard takes no actions">read-only</span>` : ''}
    ${site.live ? html`<span class="live" id="live-indicator" data-status="connecting" title="Live updates"><span class="dot"></span><span class="live-label">live</span></span>` : ''}
    ${site.security.mode === 'token' ? html`<form method="post" action="${ctx.href('/logout')}" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}"><button class="link-btn" type="submit">Sign out</button></form>` : ''}
  </div>
</header>
<main>
${ctx.flash ? html`<div class="flash" role="status">${ctx.flash}</div>` : ''}
${options.body}
</main>
</body>
</html>
`;
}

/** A page that says what went wrong (400, 404), in the frame. */
export function problemPage(ctx: RequestContext, title: string, message: string): Html {
  return layout(ctx, {
    title,
    active: '',
    body: html`<section class="card problem"><h1>${title}</h1><p>${message}</p><p><a href="${ctx.href('/')}">Back to the overview</a></p></section>`,
  });
}
