// The pages' stylesheet (one small file, served as /assets/style.css).
export const styleCss = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #f4f5f7; --card: #fff; --muted: #5b6570;
  --accent: #0b5cad; --bad: #b3261e; --ok: #1e7d32; --line: #d8dce1; --mine: #e6f0fb; --dm: #fdf3e1; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8eaed; --bg: #15181c; --card: #1f2328;
  --muted: #a0a8b2; --accent: #7ab4f5; --bad: #f28b82; --ok: #81c995; --line: #343a41;
  --mine: #1d2c3d; --dm: #3a3020; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 16px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 1.25rem; margin: 0; } h2 { font-size: 1.05rem; margin: 0 0 .5rem; }
.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; padding: .6rem 1rem;
  background: var(--card); border-bottom: 1px solid var(--line); }
.status { padding: .1rem .55rem; border-radius: 1rem; border: 1px solid var(--line); font-size: .9rem; }
.status[data-state=open] { color: var(--ok); border-color: var(--ok); }
.status[data-state=waiting], .status[data-state=connecting] { color: var(--muted); }
.status[data-state=closed] { color: var(--bad); border-color: var(--bad); }
.me { color: var(--muted); margin-left: auto; } .links a { color: var(--accent); }
.notice { margin: .5rem 1rem; padding: .5rem .8rem; border-radius: .4rem; background: var(--dm);
  border: 1px solid var(--line); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .8rem; }
.narrow { max-width: 26rem; margin: 1.5rem auto; display: grid; gap: 1.2rem; }
.stack { display: grid; gap: .5rem; } .stack label { display: grid; gap: .2rem; }
.row { display: flex; gap: .5rem; align-items: center; } .wrap { flex-wrap: wrap; align-items: end; }
.grow { flex: 1; min-width: 0; } .grow input, .grow textarea { width: 100%; }
input, textarea, button { font: inherit; color: inherit; }
input, textarea { padding: .4rem .5rem; border: 1px solid var(--line); border-radius: .35rem;
  background: var(--bg); }
textarea { resize: vertical; min-height: 2.4rem; }
button { padding: .4rem .8rem; border: 1px solid var(--accent); border-radius: .35rem;
  background: var(--accent); color: var(--card); cursor: pointer; }
button.plain { background: transparent; color: var(--accent); }
button:disabled { opacity: .45; cursor: default; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.error { color: var(--bad); min-height: 1.2em; margin: 0; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
.chat { display: grid; grid-template-columns: minmax(12rem, 18rem) 1fr; gap: 1rem; padding: 1rem;
  height: calc(100vh - 3.5rem); }
.rooms { overflow: auto; } .room { display: flex; flex-direction: column; min-height: 0; }
.list { list-style: none; padding: 0; margin: .6rem 0 0; display: grid; gap: .3rem; }
.list button { width: 100%; text-align: left; background: transparent; color: var(--fg);
  border-color: var(--line); display: flex; flex-wrap: wrap; justify-content: space-between;
  gap: 0 .5rem; overflow-wrap: anywhere; }
.list [aria-current=true] button { border-color: var(--accent); background: var(--mine); }
.count { color: var(--muted); font-size: .85rem; }
.members { color: var(--muted); margin: 0 0 .4rem; font-size: .9rem; }
.members button { padding: 0 .4rem; margin: 0 .2rem; font-size: .85rem; }
.messages { list-style: none; margin: 0; padding: 0; flex: 1; overflow-y: auto; min-height: 8rem;
  display: flex; flex-direction: column; gap: .35rem; }
.messages li { padding: .35rem .55rem; border-radius: .4rem; border: 1px solid var(--line);
  overflow-wrap: anywhere; white-space: pre-wrap; }
.messages .mine { background: var(--mine); } .messages .direct { background: var(--dm); }
.messages .system { border-style: dashed; color: var(--muted); }
.meta { display: block; font-size: .8rem; color: var(--muted); }
.sender, .meta strong { font-weight: 600; color: var(--fg); margin-right: .4rem; }
[inert] { opacity: .55; }
.typing { min-height: 1.3em; margin: .2rem 0; color: var(--muted); font-size: .85rem; }
.dm { font-size: .85rem; white-space: nowrap; }
.admin { display: grid; gap: 1rem; padding: 1rem; max-width: 70rem; margin: 0 auto; }
.table { width: 100%; border-collapse: collapse; font-size: .92rem; }
.table th, .table td { text-align: left; padding: .3rem .4rem; border-bottom: 1px solid var(--line); }
.chart { margin: 0; } .chart svg { width: 100%; height: auto; display: block; }
.chart polyline { fill: none; stroke: var(--accent); stroke-width: 2; }
.chart .axis { stroke: var(--line); } .chart text { fill: var(--muted); font-size: 11px; }
.check { display: flex; gap: .3rem; align-items: center; }
@media (max-width: 700px) {
  .chat { grid-template-columns: 1fr; height: auto; padding: .5rem; }
  .messages { max-height: 60vh; } .admin { padding: .5rem; }
  .table { font-size: .85rem; } .me { margin-left: 0; }
}
`;
