# ruff: noqa: E501 - a stylesheet: one rule per line reads best
"""The app's stylesheet, inlined into the page (no asset files to package): large type and high
contrast so the workbench reads well on a projector."""

CSS = """
:root { --ink:#1b1f24; --muted:#5b6470; --line:#d9dee5; --accent:#2563eb; --bg:#f4f6f9;
        --card:#ffffff; --bad:#b91c1c; --badbg:#fdecec; --ok:#166534; --okbg:#e9f7ee; --warnbg:#fff4d6; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font-family: Inter, "Segoe UI", Helvetica, Arial, sans-serif; font-size:16px; }
.topbar { display:flex; align-items:center; gap:18px; padding:10px 22px; background:#111827; color:#fff; flex-wrap:wrap; }
.topbar h1 { margin:0; font-size:26px; letter-spacing:0.5px; }
.topbar .tagline { color:#cbd5e1; font-size:15px; }
.topbar .spacer { flex:1; }
.badge { padding:5px 11px; border-radius:999px; background:#1f2937; border:1px solid #374151; font-size:14px; color:#e5e7eb; }
.badge.untrained { background:#b91c1c; border-color:#fecaca; color:#fff; font-weight:700; }
.banner { margin:10px 22px 0 22px; padding:10px 16px; border-radius:8px; font-size:16px; }
.banner.untrained { background:var(--badbg); color:var(--bad); border:1px solid #f5b5b5; font-weight:600; }
.notice { margin:10px 22px 0 22px; padding:9px 14px; border-radius:8px; font-size:15px; }
.notice:empty { display:none; }
.notice.error, .msg.error { background:var(--badbg); color:var(--bad); border:1px solid #f5b5b5; }
.notice.info, .msg.info { background:var(--okbg); color:var(--ok); border:1px solid #b7e1c4; }
.msg { padding:8px 12px; border-radius:8px; margin:8px 0; font-size:15px; }
.msg:empty { display:none; }
.main { display:flex; gap:18px; padding:14px 22px 22px 22px; align-items:flex-start; flex-wrap:wrap; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:14px 16px;
         box-shadow:0 1px 2px rgba(0,0,0,0.04); }
.maze-col { width:560px; flex:0 0 560px; }
.work-col { flex:1 1 640px; min-width:620px; }
.row { display:flex; align-items:center; gap:8px; flex-wrap:wrap; margin:6px 0; }
.row label, .lbl { color:var(--muted); font-size:14px; font-weight:600; text-transform:uppercase; letter-spacing:0.4px; }
.field { display:flex; flex-direction:column; gap:3px; margin-right:10px; }
.dash-input-container { width:132px; }
.dash-input-container:has(#ckpt-path) { width:380px; }
.dash-input-container:has(#channel), .dash-input-container:has(#gn), .dash-input-container:has(#rank-n) { width:110px; }
input.dash-input-element { width:100%; font-size:16px; }
button, .btn { font-size:15px; padding:7px 13px; border-radius:7px; border:1px solid #b8c0cc; background:#fff; cursor:pointer; color:var(--ink); }
button:hover, .btn:hover { background:#eef2f7; }
button.primary { background:var(--accent); border-color:var(--accent); color:#fff; font-weight:600; }
button.primary:hover { background:#1d4ed8; }
button.danger { border-color:#f5b5b5; color:var(--bad); }
.radio-pills label { display:inline-block; padding:5px 11px; border:1px solid #b8c0cc; border-radius:999px; margin:0 4px 4px 0;
                     cursor:pointer; font-size:15px; text-transform:none; color:var(--ink); letter-spacing:0; font-weight:500; }
.radio-pills input { margin-right:5px; }
.key { display:flex; gap:14px; flex-wrap:wrap; font-size:14px; color:var(--muted); margin-top:4px; }
.key span.swatch { display:inline-block; width:22px; height:5px; border-radius:3px; margin-right:6px; vertical-align:middle; }
.info-line { font-size:15px; color:var(--ink); margin:4px 0; }
.upload { border:2px dashed #b8c0cc; border-radius:8px; padding:8px 12px; text-align:center; cursor:pointer; color:var(--muted); font-size:15px; }
table.outcomes { border-collapse:collapse; font-size:17px; margin:6px 0; }
table.outcomes th, table.outcomes td { padding:6px 14px; border-bottom:1px solid var(--line); text-align:right; }
table.outcomes th:first-child, table.outcomes td:first-child { text-align:left; }
table.outcomes th { color:var(--muted); font-size:14px; text-transform:uppercase; }
table.card td { padding:4px 12px; border-bottom:1px solid var(--line); vertical-align:top; font-size:15px; }
table.card td:first-child { color:var(--muted); font-weight:600; white-space:nowrap; }
.figs { display:flex; gap:10px; flex-wrap:wrap; }
.fig3 { flex:1 1 300px; min-width:300px; }
.fig2 { flex:1 1 420px; min-width:380px; }
.progress-outer { height:18px; background:#e5e7eb; border-radius:9px; overflow:hidden; width:100%; max-width:520px; }
.progress-inner { height:100%; background:var(--accent); transition:width 0.3s; }
.tab-content { padding-top:10px; }
.hint { color:var(--muted); font-size:14px; }
h3 { margin:6px 0 8px 0; font-size:19px; }
.section { margin-top:14px; padding-top:10px; border-top:1px solid var(--line); }
.share { display:flex; align-items:center; gap:6px; }
.model-md table { border-collapse:collapse; margin:8px 0; }
.model-md td, .model-md th { border-bottom:1px solid var(--line); padding:4px 10px; text-align:left; font-size:15px; }
.model-md pre { background:#f3f4f6; padding:8px; border-radius:6px; }
details summary { cursor:pointer; color:var(--accent); margin:8px 0; }
.share a { color:#93c5fd; font-size:14px; }
.badge.region { background:#7c2d12; border-color:#f97316; color:#ffedd5; }
.region-info { color:var(--muted); font-size:14px; }
.field .hint { max-width:180px; white-space:normal; line-height:1.2; }
.field.src .dash-input-container { width:110px; }
.msg.warn { background:var(--warnbg); color:#7a4b00; border:1px solid #f3d48b; }
.msg.warn ul { margin:4px 0 0 18px; padding:0; }
table.outcomes tr.total td { font-weight:700; border-top:2px solid var(--ink); }
table.outcomes tr.summary td { color:var(--muted); font-size:15px; }
table.glossary td.meaning { text-align:left; color:var(--muted); font-size:14px; max-width:420px; }
.definition { max-width:720px; margin:4px 0 10px 0; }
.steer-table { flex:1 1 100%; }
"""
