/** Calls to the desktop server's HTTP API. Failures throw ApiFailure with the server's code and message. */

export class ApiFailure extends Error {
  override readonly name = "ApiFailure";
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The login is over (logout elsewhere, idle, expired, user deleted): back to the login page. */
export function backToLogin(): void {
  location.assign("/");
}

async function failureOf(res: Response): Promise<ApiFailure> {
  if (res.status === 401) backToLogin();
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    return new ApiFailure(res.status, body.error?.code ?? "EIO", body.error?.message ?? res.statusText);
  } catch {
    return new ApiFailure(res.status, "EIO", `${res.status} ${res.statusText}`);
  }
}

export async function getJson<T>(path: string, options: { signal?: AbortSignal } = {}): Promise<T> {
  const res = await fetch(path, { credentials: "same-origin", ...(options.signal !== undefined ? { signal: options.signal } : {}) });
  if (!res.ok) throw await failureOf(res);
  return (await res.json()) as T;
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await failureOf(res);
  return (await res.json()) as T;
}

export async function deleteJson(path: string): Promise<void> {
  await fetch(path, { method: "DELETE", credentials: "same-origin" });
}

export async function getText(path: string): Promise<string> {
  const res = await fetch(path, { credentials: "same-origin" });
  if (!res.ok) throw await failureOf(res);
  return await res.text();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** PUTs a body with upload progress (fetch has none): resolves with the server's JSON answer. */
export function putWithProgress(path: string, body: Blob | string, onProgress: (sent: number) => void): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", path);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      const parsed = parseJson(xhr.responseText) as { error?: { code?: string; message?: string } } | null;
      if (xhr.status >= 200 && xhr.status < 300) resolve(parsed);
      else reject(new ApiFailure(xhr.status, parsed?.error?.code ?? "EIO", parsed?.error?.message ?? `upload failed (${xhr.status})`));
    };
    xhr.onerror = () => reject(new ApiFailure(0, "EIO", "upload failed: the connection was closed"));
    xhr.send(body);
  });
}

export function filesUrl(what: "list" | "content" | "stat", path: string, extra = ""): string {
  return `/api/files/${what}?path=${encodeURIComponent(path)}${extra}`;
}
