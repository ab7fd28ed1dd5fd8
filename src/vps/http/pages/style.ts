/** The VPS page's stylesheet, compiled into the binary and served at `/assets/vps.css`. */
export const VPS_CSS = `
:root{color-scheme:light dark;--fg:#1d1d1f;--muted:#6b6b70;--line:#d9d9de;--bg:#fff;--card:#f6f6f8;--bad:#a40000;--good:#05603a}
@media (prefers-color-scheme:dark){:root{--fg:#eee;--muted:#a0a0a8;--line:#3a3a40;--bg:#161618;--card:#202024;--bad:#ff8a80;--good:#7bd88f}}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header{display:flex;gap:1rem;align-items:baseline;justify-content:space-between;padding:1rem 1.5rem;border-bottom:1px solid var(--line)}
header h1{font-size:1.3rem;margin:0}
main{padding:1.5rem;max-width:70rem}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.2rem;margin-bottom:1.5rem}
h2{font-size:1.05rem;margin:0 0 .7rem}
.muted{color:var(--muted)}.bad{color:var(--bad);font-weight:600}.good{color:var(--good);font-weight:600}
.signin{max-width:22rem;margin:4rem auto}
.signin label{display:block;margin:.8rem 0}.signin input{display:block;width:100%}
input,button{font:inherit;padding:.4rem .55rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
button{cursor:pointer}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .4rem;border-top:1px solid var(--line);vertical-align:top}
th{font-weight:600}code{font-size:.85em;word-break:break-all}form.inline{display:inline}
`;
