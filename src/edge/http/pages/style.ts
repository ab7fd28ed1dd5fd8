/**
 * The status page's stylesheet, compiled into the binary (no CDN, no files next to it) and served
 * at `/assets/status.css`, so the page's CSP can forbid inline styles and every other source.
 */
export const STATUS_CSS = `
:root{color-scheme:light dark;--fg:#1d1d1f;--muted:#6b6b70;--line:#d9d9de;--bg:#fff;--card:#f6f6f8;--bad:#a40000;--good:#05603a;--warn:#8a5300}
@media (prefers-color-scheme:dark){:root{--fg:#eee;--muted:#a0a0a8;--line:#3a3a40;--bg:#161618;--card:#202024;--bad:#ff8a80;--good:#7bd88f;--warn:#ffcc66}}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:baseline;padding:1rem 1.5rem;border-bottom:1px solid var(--line)}
header h1{font-size:1.3rem;margin:0}
main{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,1fr);gap:1.5rem;padding:1.5rem;max-width:80rem}
@media (max-width:800px){main{grid-template-columns:1fr}}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.2rem;margin-bottom:1.5rem}
h2{font-size:1.05rem;margin:0 0 .7rem}
.muted{color:var(--muted)}.bad{color:var(--bad);font-weight:600}.good{color:var(--good);font-weight:600}.warn{color:var(--warn);font-weight:600}
.banner{margin:1rem 1.5rem 0;padding:.8rem 1rem;border-radius:8px;border:1px solid var(--bad);color:var(--bad)}
.notice{margin:1rem 1.5rem 0;padding:.6rem 1rem;border-radius:8px;border:1px solid var(--good);color:var(--good)}
.big{font-size:2rem;font-weight:700}
form.search{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem}
form.search input[type=search]{flex:1 1 16rem}
input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
button{cursor:pointer}
ul.memories{list-style:none;margin:0;padding:0}
ul.memories li{padding:.6rem 0;border-top:1px solid var(--line)}
ul.memories li:first-child{border-top:0}
.meta{font-size:.82rem;color:var(--muted)}
.tag{display:inline-block;padding:0 .4rem;margin-right:.3rem;border-radius:4px;border:1px solid var(--line);font-size:.8rem}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .4rem;border-top:1px solid var(--line);vertical-align:top}
th{font-weight:600}code{font-size:.85em;word-break:break-all}
.signin{max-width:30rem;margin:4rem auto;padding:0 1rem}.signin h1{font-size:1.3rem}
.signin label{display:block;margin:.8rem 0}.signin input{display:block;width:100%;margin-top:.3rem}
`;
