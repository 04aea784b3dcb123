/** Characters that would end an HTML text node or attribute. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page shown to a browser without a session: a field for the token the desktop printed at start. */
export function loginPage(message: string | null): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>oneos — log in</title>
<style>
  body { font: 15px system-ui, sans-serif; background: #1d2330; color: #e8ecf3; display: grid; place-items: center; min-height: 100vh; margin: 0; }
  form { background: #283042; padding: 28px 32px; border-radius: 10px; width: min(420px, 90vw); box-shadow: 0 8px 30px #0006; }
  h1 { font-size: 20px; margin: 0 0 12px; } p { color: #b7c0d1; line-height: 1.4; }
  input { width: 100%; box-sizing: border-box; padding: 9px 10px; font: 14px ui-monospace, monospace; border-radius: 6px; border: 1px solid #4a556d; background: #1d2330; color: inherit; }
  button { margin-top: 14px; padding: 8px 18px; border: 0; border-radius: 6px; background: #4f8cff; color: white; font-size: 14px; cursor: pointer; }
  .error { color: #ff8a80; }
</style></head>
<body><form method="get" action="/">
  <h1>oneos desktop</h1>
  ${message === null ? "" : `<p class="error" role="alert">${escapeHtml(message)}</p>`}
  <p>Paste the token that <code>oneos desktop</code> printed (the <code>?token=</code> part of its URL).</p>
  <label for="token">Token</label>
  <input id="token" name="token" type="password" autocomplete="off" autofocus>
  <button type="submit">Log in</button>
</form></body></html>`;
}

/** Shown after login when the browser client was never built. */
export function missingClientPage(dir: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>oneos — desktop not built</title></head>
<body style="font: 15px system-ui, sans-serif; padding: 2em"><h1>The desktop's web client is not built</h1>
<p>${escapeHtml(dir)}/index.html is missing. Build it with <code>npm run build:desktop</code> (or <code>npm run build</code>) and reload.</p></body></html>`;
}
