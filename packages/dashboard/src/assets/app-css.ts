/** The dashboard's stylesheet: system fonts, a light theme with a dark top bar, no framework. */
export const APP_CSS = `
:root {
  --bg: #f6f7f9; --card: #fff; --text: #111827; --muted: #6b7280; --line: #e5e7eb; --line-strong: #d1d5db;
  --accent: #4f46e5; --accent-soft: #eef2ff; --bar: #111827;
  --pending: #2563eb; --pending-bg: #dbeafe; --running: #b45309; --running-bg: #fef3c7;
  --waiting: #7e22ce; --waiting-bg: #f3e8ff; --succeeded: #15803d; --succeeded-bg: #dcfce7;
  --failed: #b91c1c; --failed-bg: #fee2e2; --cancelled: #4b5563; --cancelled-bg: #e5e7eb;
  --blocked: #71717a; --blocked-bg: #f4f4f5;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
h1 { font-size: 22px; line-height: 1.3; margin: 0; font-weight: 650; display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
h2 { font-size: 14px; margin: 0 0 12px; font-weight: 600; display: flex; align-items: center; gap: 8px; }
.muted { color: var(--muted); }
.strong { font-weight: 600; color: var(--text); }
.mono { font-family: var(--mono); font-size: 12.5px; }
.topbar { position: sticky; top: 0; z-index: 5; display: flex; align-items: center; gap: 28px; padding: 0 24px; height: 52px; background: var(--bar); color: #e5e7eb; }
.brand { display: flex; align-items: center; gap: 9px; color: #fff; font-weight: 650; font-size: 15px; letter-spacing: .2px; }
.brand:hover { text-decoration: none; }
.brand-dark { color: var(--text); font-size: 18px; margin-bottom: 4px; }
.logo { width: 18px; height: 18px; border-radius: 5px; background: linear-gradient(135deg, #818cf8, #4f46e5 55%, #22c55e); display: inline-block; }
.topbar nav { display: flex; gap: 4px; height: 100%; }
.topbar nav a { color: #cbd5e1; display: flex; align-items: center; padding: 0 12px; border-bottom: 2px solid transparent; font-weight: 500; }
.topbar nav a:hover { color: #fff; text-decoration: none; }
.topbar nav a.active { color: #fff; border-bottom-color: #818cf8; }
.topbar-right { margin-left: auto; display: flex; align-items: center; gap: 14px; }
.live { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; color: #94a3b8; }
.live .dot { width: 8px; height: 8px; border-radius: 50%; background: #64748b; }
.live[data-status="live"] .dot { background: #22c55e; box-shadow: 0 0 0 3px rgba(34,197,94,.18); }
.live[data-status="offline"] .dot { background: #ef4444; }
.link-btn { background: none; border: 0; color: #cbd5e1; cursor: pointer; font: inherit; padding: 0; }
.link-btn:hover { color: #fff; }
main { max-width: 1240px; margin: 0 auto; padding: 24px; }
.page-head { display: flex; align-items: flex-end; justify-content: space-between; gap: 16px; margin: 4px 0 18px; flex-wrap: wrap; }
.page-head p { margin: 4px 0 0; }
.crumbs { color: var(--muted); font-size: 13px; margin-bottom: 4px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; margin-bottom: 18px; box-shadow: 0 1px 2px rgba(16,24,40,.04); }
.card-head { display: flex; align-items: center; justify-content: space-between; gap: 12px; margin-bottom: 12px; }
.card-head h2 { margin: 0; }
.head-actions { display: flex; gap: 8px; align-items: center; }
.grid-2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.grid-2 > .card { margin-bottom: 18px; min-width: 0; }
@media (max-width: 900px) { .grid-2 { grid-template-columns: 1fr; } }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px; margin-bottom: 18px; }
.stat { display: flex; flex-direction: column; gap: 2px; background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; color: var(--text); border-top: 3px solid var(--line-strong); }
a.stat[href]:hover { text-decoration: none; border-color: var(--line-strong); }
.stat-label { color: var(--muted); font-size: 12px; font-weight: 500; }
.stat-value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.s-pending { border-top-color: var(--pending); } .s-running { border-top-color: #f59e0b; } .s-waiting { border-top-color: var(--waiting); }
.s-failed { border-top-color: #ef4444; } .s-succeeded { border-top-color: #22c55e; } .s-workers { border-top-color: var(--accent); }
.table-wrap { overflow-x: auto; margin: 0 -20px; }
.card > .table-wrap:first-child { margin-top: -18px; border-radius: 10px 10px 0 0; }
.card > .table-wrap:last-child { margin-bottom: -18px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { text-align: left; font-size: 11.5px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; padding: 8px 12px; border-bottom: 1px solid var(--line); white-space: nowrap; background: #fafafa; }
td { padding: 9px 12px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th:first-child, td:first-child { padding-left: 20px; } th:last-child, td:last-child { padding-right: 20px; }
tbody tr:last-child td { border-bottom: 0; }
tbody tr:hover td { background: #fafbff; }
.num { text-align: right; }
td.num a { color: var(--text); font-weight: 500; }
td.num a.zero { color: #c0c4cc; font-weight: 400; }
td.num a.n-failed { color: var(--failed); font-weight: 600; }
td.num a.n-running { color: var(--running); }
.actions { text-align: right; white-space: nowrap; }
.error-cell { color: var(--muted); max-width: 340px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.err-name { color: var(--failed); font-weight: 600; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 11.5px; font-weight: 600; line-height: 18px; white-space: nowrap; background: var(--blocked-bg); color: var(--blocked); }
.badge-pending { background: var(--pending-bg); color: var(--pending); }
.badge-running { background: var(--running-bg); color: var(--running); }
.badge-waiting { background: var(--waiting-bg); color: var(--waiting); }
.badge-succeeded { background: var(--succeeded-bg); color: var(--succeeded); }
.badge-failed { background: var(--failed-bg); color: var(--failed); }
.badge-cancelled, .badge-given-back { background: var(--cancelled-bg); color: var(--cancelled); }
h1 .badge { font-size: 12.5px; padding: 2px 10px; }
.pill { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 500; border: 1px solid var(--line-strong); color: var(--muted); }
.pill-active { border-color: #bbf7d0; color: var(--succeeded); background: #f0fdf4; }
.pill-paused { border-color: #fde68a; color: #92400e; background: #fffbeb; }
.pill-stale { border-color: #fecaca; color: var(--failed); background: #fef2f2; }
.pill-muted { color: #cbd5e1; border-color: #475569; }
.tag { display: inline-block; font-family: var(--mono); font-size: 12px; background: #f3f4f6; color: #374151; border-radius: 5px; padding: 0 6px; margin: 1px 4px 1px 0; }
.btn { display: inline-flex; align-items: center; gap: 6px; font: inherit; font-size: 13px; font-weight: 500; padding: 5px 12px; border-radius: 7px; border: 1px solid var(--line-strong); background: #fff; color: var(--text); cursor: pointer; white-space: nowrap; }
.btn:hover { background: #f9fafb; border-color: #9ca3af; text-decoration: none; }
.btn-primary { background: var(--accent); border-color: var(--accent); color: #fff; }
.btn-primary:hover { background: #4338ca; border-color: #4338ca; }
.btn-danger { color: var(--failed); border-color: #fecaca; }
.btn-danger:hover { background: #fef2f2; border-color: #f87171; }
.btn-ghost { border-color: transparent; background: transparent; }
form.inline { display: inline; margin: 0; }
.filters { display: flex; flex-wrap: wrap; gap: 12px 14px; align-items: flex-end; }
.filters label, .login-card label { display: flex; flex-direction: column; gap: 4px; font-size: 12px; font-weight: 500; color: var(--muted); }
input, select { font: inherit; font-size: 13px; padding: 5px 9px; border: 1px solid var(--line-strong); border-radius: 7px; background: #fff; color: var(--text); min-height: 32px; }
input:focus, select:focus { outline: 2px solid #c7d2fe; border-color: var(--accent); }
.filter-buttons { display: flex; gap: 6px; }
.find { display: flex; gap: 6px; }
.find input { width: 190px; }
.pager { display: flex; justify-content: space-between; align-items: center; padding-top: 14px; }
.empty { color: var(--muted); margin: 4px 0; }
.note { color: var(--muted); font-size: 12px; margin: 12px 0 0; }
.flash { background: #ecfdf5; border: 1px solid #a7f3d0; color: #065f46; padding: 9px 14px; border-radius: 8px; margin-bottom: 16px; }
.flash-error { background: #fef2f2; border-color: #fecaca; color: #991b1b; }
.problem h1 { margin-bottom: 8px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 14px 24px; margin: 0; }
.fact dt { font-size: 11.5px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; }
.fact dd { margin: 2px 0 0; }
pre { margin: 0; }
pre.json, pre.stack-text { font-family: var(--mono); font-size: 12.5px; line-height: 1.55; background: #f8fafc; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; overflow: auto; max-height: 420px; white-space: pre-wrap; word-break: break-word; }
pre.stack-text { background: #fffafa; border-color: #fde2e2; color: #7f1d1d; }
.attempts { list-style: none; margin: 0; padding: 0; }
.attempt { border-left: 3px solid var(--line-strong); padding: 4px 0 12px 14px; margin-left: 4px; }
.attempt + .attempt { margin-top: 4px; }
.attempt:has(.badge-failed) { border-left-color: #fca5a5; }
.attempt:has(.badge-succeeded) { border-left-color: #86efac; }
.attempt-head { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; margin-bottom: 6px; }
.attempt-n { font-weight: 600; }
.error-title { margin-bottom: 6px; word-break: break-word; }
.code { font-family: var(--mono); font-size: 12px; background: #fef2f2; color: var(--failed); padding: 0 5px; border-radius: 4px; }
details.stack summary { cursor: pointer; color: var(--muted); font-size: 12.5px; margin-bottom: 6px; }
.running { list-style: none; margin: 4px 0 0; padding: 0; font-size: 13px; }
.running li { margin: 2px 0; }
.legend { display: flex; gap: 6px; align-items: center; color: var(--muted); font-size: 12px; }
.legend .key { width: 10px; height: 10px; border-radius: 2px; display: inline-block; margin-left: 8px; }
.key.c-succeeded { background: #22c55e; } .key.c-failed { background: #ef4444; } .key.c-cancelled { background: #9ca3af; }
svg.chart { width: 100%; height: auto; display: block; }
svg .grid { stroke: #eef0f3; stroke-width: 1; }
svg .axis { fill: #9ca3af; font-size: 10px; font-family: system-ui, sans-serif; }
svg .c-succeeded { fill: #22c55e; } svg .c-failed { fill: #ef4444; } svg .c-cancelled { fill: #9ca3af; }
svg.spark { width: 120px; height: 24px; display: block; background: #fafafa; border-radius: 3px; }
.panel-error { color: var(--failed); background: #fef2f2; padding: 8px 12px; border-radius: 8px; }
table.lines td { font-family: var(--mono); font-size: 12.5px; padding-top: 5px; padding-bottom: 5px; vertical-align: top; }
table.lines td.msg { white-space: pre-wrap; word-break: break-word; }
.lvl { font-weight: 600; text-transform: uppercase; font-size: 11px; }
.lvl-debug { color: #9ca3af; } .lvl-info { color: var(--pending); } .lvl-warn { color: #b45309; } .lvl-error { color: var(--failed); }
svg.graph { display: block; max-width: 100%; height: auto; }
svg.graph .edge { stroke: #cbd5e1; stroke-width: 1.5; fill: none; }
svg.graph .node rect { stroke-width: 1.5; }
svg.graph .node text { font-family: system-ui, sans-serif; font-size: 12px; fill: #111827; }
svg.graph .node text.sub { font-size: 10.5px; fill: #4b5563; }
svg.graph .node.current rect { stroke-width: 3; }
svg.graph a:hover rect { filter: brightness(.97); }
svg.graph [data-state="blocked"] rect { fill: #f4f4f5; stroke: #a1a1aa; }
svg.graph [data-state="pending"] rect { fill: #e0f2fe; stroke: #0284c7; }
svg.graph [data-state="running"] rect { fill: #fef9c3; stroke: #ca8a04; }
svg.graph [data-state="waiting"] rect { fill: #fae8ff; stroke: #a21caf; }
svg.graph [data-state="succeeded"] rect { fill: #dcfce7; stroke: #16a34a; }
svg.graph [data-state="failed"] rect { fill: #fee2e2; stroke: #dc2626; }
svg.graph [data-state="cancelled"] rect { fill: #e5e7eb; stroke: #4b5563; }
h3.sub-h { font-size: 13px; margin: 16px 0 6px; }
.panel-head { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-bottom: 12px; }
.graph-wrap { overflow-x: auto; padding: 4px 0; }
.tree { list-style: none; padding-left: 0; margin: 0; }
.tree ul { list-style: none; padding-left: 18px; border-left: 1px dashed var(--line-strong); margin: 4px 0 4px 6px; }
.tree li { margin: 3px 0; }
.login-body { display: flex; min-height: 100vh; align-items: center; justify-content: center; }
.login { width: 100%; max-width: 380px; padding: 24px; }
.login-card { display: flex; flex-direction: column; gap: 14px; padding: 26px; }
`;
