/** Characters that would end an HTML text node or attribute. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The login page's own policy: no script at all, its form posts only here, never framed. */
export const LOGIN_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface LoginPageOptions {
  /** Shown above the form (e.g. "login incorrect"); null for none. */
  readonly message: string | null;
  /** Put back in the name field after a failed try (never the password). */
  readonly user?: string;
  /** When the desktop has an owner token: tell its owner the printed URL logs in as root. */
  readonly ownerToken?: boolean;
}

/** The page shown to a browser without a session: the cluster user's name and password. */
export function loginPage(options: LoginPageOptions): string {
  const { message, user = "", ownerToken = false } = options;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>oneos — log in</title>
<style>
  body { font: 15px system-ui, sans-serif; background: #1d2330; color: #e8ecf3; display: grid; place-items: center; min-height: 100vh; margin: 0; }
  form { background: #283042; padding: 28px 32px; border-radius: 10px; width: min(420px, 90vw); box-shadow: 0 8px 30px #0006; }
  h1 { font-size: 20px; margin: 0 0 12px; } p { color: #b7c0d1; line-height: 1.4; }
  label { display: block; margin: 12px 0 4px; }
  input { width: 100%; box-sizing: border-box; padding: 9px 10px; font: 14px ui-monospace, monospace; border-radius: 6px; border: 1px solid #4a556d; background: #1d2330; color: inherit; }
  button { margin-top: 16px; padding: 8px 18px; border: 0; border-radius: 6px; background: #4f8cff; color: white; font-size: 14px; cursor: pointer; }
  .error { color: #ff8a80; } .hint { font-size: 13px; }
</style></head>
<body><form method="post" action="/login">
  <h1>oneos desktop</h1>
  ${message === null ? "" : `<p class="error" role="alert">${escapeHtml(message)}</p>`}
  <p>Log in with your cluster user name and password.</p>
  <label for="user">User</label>
  <input id="user" name="user" autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="32" required value="${escapeHtml(user)}"${user === "" ? " autofocus" : ""}>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" maxlength="1024" required${user === "" ? "" : " autofocus"}>
  <button type="submit">Log in</button>
  ${ownerToken ? `<p class="hint">The cluster's owner can also open the address <code>oneos desktop</code> printed (with <code>?token=</code>): it logs in as root.</p>` : ""}
</form></body></html>`;
}

/** Shown after login when the browser client was never built. */
export function missingClientPage(dir: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>oneos — desktop not built</title></head>
<body style="font: 15px system-ui, sans-serif; padding: 2em"><h1>The desktop's web client is not built</h1>
<p>${escapeHtml(dir)}/index.html is missing. Build it with <code>npm run build:desktop</code> (or <code>npm run build</code>) and reload.</p></body></html>`;
}
