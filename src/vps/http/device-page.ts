/**
 * The RFC 8628 verification page at `/device`: one self-contained HTML form (no scripts, no
 * external resources). Every value written into the page is escaped.
 */
export function escapeHtml(s: string): string {
  return s
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** Strict CSP for the page: inline styles only, forms post to this origin only, no framing. */
export const DEVICE_PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface DevicePageState {
  code?: string;
  username?: string;
  /** A message to show, and whether it is good news. */
  message?: { text: string; ok: boolean };
  /** Hide the form once the code is decided. */
  done?: boolean;
  /** The device asking, when the code is known. */
  device?: { device_id: string; device_name: string | null; platform: string | null };
}

export function renderDevicePage(s: DevicePageState): string {
  const msg = s.message
    ? `<p class="${s.message.ok ? "ok" : "err"}" role="status">${escapeHtml(s.message.text)}</p>`
    : "";
  const dev = s.device
    ? `<p>Device asking for access: <b>${escapeHtml(s.device.device_name ?? s.device.device_id)}</b>${
        s.device.platform ? ` (${escapeHtml(s.device.platform)})` : ""
      }</p>`
    : "";
  const form = s.done
    ? ""
    : `<form method="post" action="/device">
  <label>Code shown on your device<input name="user_code" value="${escapeHtml(s.code ?? "")}" autocomplete="off" autocapitalize="characters" required maxlength="20"></label>
  <label>User name<input name="username" value="${escapeHtml(s.username ?? "")}" autocomplete="username" maxlength="64"></label>
  <label>Password<input name="password" type="password" autocomplete="current-password" maxlength="1024"></label>
  <div class="row"><button name="action" value="approve">Approve</button><button name="action" value="deny" class="deny">Deny</button></div>
  <p class="hint">Approve only if you started <code>dionysus login</code> yourself and the codes match.</p>
</form>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Dionysus: connect a device</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#222}
label{display:block;margin:.8rem 0}input{display:block;width:100%;padding:.5rem;font:inherit;box-sizing:border-box}
.row{display:flex;gap:.5rem}button{flex:1;padding:.6rem;font:inherit;cursor:pointer}.deny{background:#eee}
.ok{color:#064;font-weight:600}.err{color:#a00;font-weight:600}.hint{color:#666;font-size:.9rem}
</style></head><body>
<h1>Connect a device</h1>
${msg}${dev}${form}
</body></html>`;
}
