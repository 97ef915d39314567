/**
 * The dashboard's only script (served as a file: the Content-Security-Policy runs no inline
 * script). Pages work without it; with it: relative times stay current, dangerous buttons ask
 * first, and live updates swap the page's `data-live` regions when the server says jobs moved.
 */
export const APP_JS = `'use strict';
(function () {
  var body = document.body;
  var base = body.getAttribute('data-base') || '';
  var UNITS = [[86400000, 'd'], [3600000, 'h'], [60000, 'min'], [1000, 's']];
  function rel(ms) {
    var diff = ms - Date.now(), abs = Math.abs(diff);
    if (abs < 1000) return 'just now';
    for (var i = 0; i < UNITS.length; i++) {
      if (abs >= UNITS[i][0]) { var n = Math.floor(abs / UNITS[i][0]); return diff < 0 ? n + ' ' + UNITS[i][1] + ' ago' : 'in ' + n + ' ' + UNITS[i][1]; }
    }
    return 'just now';
  }
  function tick() {
    var els = document.querySelectorAll('time[data-ts]');
    for (var i = 0; i < els.length; i++) els[i].textContent = rel(Number(els[i].getAttribute('data-ts')));
  }
  setInterval(tick, 10000);
  // Set once a form is on its way: live updates then leave the page alone, since replacing the
  // region that holds a submitted form can cancel its submission.
  var submitting = false;
  document.addEventListener('submit', function (e) {
    var message = e.target && e.target.getAttribute && e.target.getAttribute('data-confirm');
    if (message && !window.confirm(message)) { e.preventDefault(); return; }
    submitting = true;
  });
  window.addEventListener('pageshow', function () { submitting = false; });
  if (body.getAttribute('data-live') !== 'on' || !window.EventSource || !document.querySelector('[data-live]')) return;
  var indicator = document.getElementById('live-indicator');
  function status(s) { if (indicator) indicator.setAttribute('data-status', s); }
  var busy = false, again = false, missed = false;
  function refresh() {
    if (submitting) return;
    if (document.hidden) { missed = true; return; }
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { headers: { 'x-docket-live': '1' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null || submitting) return;
        var doc = new DOMParser().parseFromString(text, 'text/html');
        var regions = document.querySelectorAll('[data-live][id]');
        for (var i = 0; i < regions.length; i++) {
          var next = doc.getElementById(regions[i].id);
          if (!next) continue;
          if (next.innerHTML !== regions[i].innerHTML) regions[i].replaceWith(document.importNode(next, true));
        }
        tick();
        body.setAttribute('data-refreshed', String(Date.now()));
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var source = new EventSource(base + '/events');
  source.addEventListener('open', function () { status('live'); });
  source.addEventListener('error', function () { status('offline'); });
  source.addEventListener('change', refresh);
  document.addEventListener('visibilitychange', function () { if (!document.hidden && missed) { missed = false; refresh(); } });
})();
`;
