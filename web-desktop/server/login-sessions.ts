import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { LOGIN_IDLE_MS, MAX_LOGIN_SESSIONS } from "./limits.js";

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

export interface LoginSessionsOptions<T> {
  /** True once what the login holds is over (its cluster session expired or was refused). */
  readonly expired: (value: T, now: number) => boolean;
  /** Called once per login when it ends: logout, idle, expiry, or pushed out by newer logins. */
  readonly onEnd: (id: string, value: T) => void;
  /** Default LOGIN_IDLE_MS. */
  readonly idleMs?: number;
}

/** A live login: its id (the cookie's value, also the owner of its terminals) and what it holds. */
export interface LoginEntry<T> {
  readonly id: string;
  readonly value: T;
}

/**
 * The browsers logged in to the desktop: each login is a random id kept in an httpOnly,
 * SameSite=Strict cookie, and holds a `T` (the user's cluster session). A login ends on logout, after
 * LOGIN_IDLE_MS without use, or when `expired` says its value is over.
 */
export class LoginSessions<T> {
  /** Cookie names are per port: browsers share cookies across the ports of one host. */
  readonly cookieName: string;
  readonly #options: LoginSessionsOptions<T>;
  readonly #idleMs: number;
  /** id → value and last use (ms); Map order is last-use order, so the first key is the least recent. */
  readonly #sessions = new Map<string, { value: T; last: number }>();

  constructor(port: number, options: LoginSessionsOptions<T>) {
    this.cookieName = `oneos_desktop_${port}`;
    this.#options = options;
    this.#idleMs = options.idleMs ?? LOGIN_IDLE_MS;
  }

  /** Opens a login holding `value`; returns the Set-Cookie header value that carries it. */
  open(value: T, now = Date.now()): string {
    const id = randomBytes(24).toString("base64url");
    this.#sessions.set(id, { value, last: now });
    while (this.#sessions.size > MAX_LOGIN_SESSIONS) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#end(oldest);
    }
    return `${this.cookieName}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(this.#idleMs / 1000)}`;
  }

  /** The request's live login (marked used now), else null; an idle or expired one ends here. */
  sessionOf(req: IncomingMessage, now = Date.now()): LoginEntry<T> | null {
    const id = cookieValue(req, this.cookieName);
    if (id === undefined) return null;
    const entry = this.#sessions.get(id);
    if (entry === undefined) return null;
    if (this.#over(entry, now)) {
      this.#end(id);
      return null;
    }
    this.#sessions.delete(id);
    this.#sessions.set(id, { value: entry.value, last: now });
    return { id, value: entry.value };
  }

  /** Ends a login; returns the Set-Cookie header value that clears the cookie. */
  close(id: string): string {
    this.#end(id);
    return `${this.cookieName}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }

  /** Ends every idle or expired login (call it now and then: a login nobody uses ends here). */
  sweep(now = Date.now()): void {
    for (const [id, entry] of [...this.#sessions]) if (this.#over(entry, now)) this.#end(id);
  }

  /** Ends them all (the desktop is shutting down). */
  closeAll(): void {
    for (const id of [...this.#sessions.keys()]) this.#end(id);
  }

  get size(): number {
    return this.#sessions.size;
  }

  #over(entry: { value: T; last: number }, now: number): boolean {
    return now - entry.last > this.#idleMs || this.#options.expired(entry.value, now);
  }

  #end(id: string): void {
    const entry = this.#sessions.get(id);
    if (entry === undefined) return;
    this.#sessions.delete(id);
    this.#options.onEnd(id, entry.value);
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
