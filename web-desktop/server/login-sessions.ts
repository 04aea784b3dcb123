import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { LOGIN_IDLE_MS, MAX_LOGIN_SESSIONS } from "./limits.js";

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** The value of one cookie in a request's Cookie header, or undefined. */
export function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Login for the desktop until the cluster has users: a random token made at start and printed in the
 * desktop's URL (as Jupyter does). Presenting it opens a login session, kept in an httpOnly,
 * SameSite=Strict cookie; the token never has to be typed again in that browser.
 */
export class LoginSessions {
  readonly token: string;
  /** Cookie names are per port: browsers share cookies across the ports of one host. */
  readonly cookieName: string;
  readonly #tokenDigest: Buffer;
  /** session id → last use (ms); Map order is insertion order, so the first key is the oldest session. */
  readonly #sessions = new Map<string, number>();

  constructor(port: number, token: string = randomBytes(24).toString("hex")) {
    this.token = token;
    this.cookieName = `oneos_desktop_${port}`;
    this.#tokenDigest = digest(token);
  }

  /** Constant-time check of a presented token. */
  tokenMatches(candidate: unknown): boolean {
    if (typeof candidate !== "string" || candidate.length === 0 || candidate.length > 256) return false;
    return timingSafeEqual(digest(candidate), this.#tokenDigest);
  }

  /** Opens a login session; returns the Set-Cookie header value that carries it. */
  open(): string {
    const id = randomBytes(24).toString("base64url");
    this.#sessions.set(id, Date.now());
    while (this.#sessions.size > MAX_LOGIN_SESSIONS) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    return `${this.cookieName}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${LOGIN_IDLE_MS / 1000}`;
  }

  /** The request's login session id when it is valid (and marks it used), else null. */
  sessionOf(req: IncomingMessage): string | null {
    const id = cookieValue(req, this.cookieName);
    if (id === undefined) return null;
    const last = this.#sessions.get(id);
    if (last === undefined) return null;
    const now = Date.now();
    if (now - last > LOGIN_IDLE_MS) {
      this.#sessions.delete(id);
      return null;
    }
    this.#sessions.delete(id);
    this.#sessions.set(id, now);
    return id;
  }

  /** Ends a login session; returns the Set-Cookie header value that clears the cookie. */
  close(id: string): string {
    this.#sessions.delete(id);
    return `${this.cookieName}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }
}

/**
 * True when a browser request comes from a page of this server: its Origin header names the Host it was
 * sent to. WebSockets are not covered by the same-origin policy, so every upgrade is checked with this.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (origin === undefined || host === undefined) return false;
  return origin === `http://${host}` || origin === `https://${host}`;
}
