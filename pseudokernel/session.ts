import { createHmac, timingSafeEqual } from "node:crypto";
import { KernelError } from "./errors.js";

/**
 * Sessions: who a kernel request comes from. A runtime answers a login with a token that names the
 * user and is signed (HMAC-SHA256) with the cluster's session secret, which only runtimes can read.
 * Clients send the token in the `Oneos-Session` header of every kernel request; a runtime believes
 * the header, never a `user` field in the body. The token also expires, and dies with its user
 * (`userdel`) or the user's password change (`gen`).
 */

export const SESSION_HEADER = "Oneos-Session";

/** Login names: as Debian's useradd takes them. */
export const USER_NAME_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Who a session is. */
export interface SessionClaims {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** Expiry, ms since the epoch. */
  readonly exp: number;
  /** The user's password generation when the session was made. */
  readonly gen: number;
}

/** root: uid 0, always there; its home is in CloudFS like everyone's. */
export const ROOT_USER = { user: "root", uid: 0, gid: 0, home: "/home/root" } as const;

function mac(secret: Uint8Array, payload: string): Buffer {
  return createHmac("sha256", secret).update(payload).digest();
}

export function signSession(secret: Uint8Array, claims: SessionClaims): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  return `${payload}.${mac(secret, payload).toString("base64url")}`;
}

/** The claims of a well-signed, unexpired token; EPERM otherwise (the message says which). */
export function verifySession(secret: Uint8Array, token: string | undefined, now = Date.now()): SessionClaims {
  if (token === undefined || token === "") throw new KernelError("EPERM", "no session: log in first");
  const dot = token.indexOf(".");
  if (dot <= 0 || token.length > 4096) throw new KernelError("EPERM", "malformed session token");
  const payload = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), "base64url");
  const expected = mac(secret, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new KernelError("EPERM", "session token not valid");
  let claims: SessionClaims;
  try {
    const o = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    if (
      typeof o["user"] !== "string" ||
      !Number.isSafeInteger(o["uid"]) ||
      !Number.isSafeInteger(o["gid"]) ||
      typeof o["home"] !== "string" ||
      typeof o["exp"] !== "number" ||
      !Number.isSafeInteger(o["gen"])
    ) {
      throw new Error("fields");
    }
    claims = o as unknown as SessionClaims;
  } catch {
    throw new KernelError("EPERM", "session token not valid");
  }
  if (claims.exp <= now) throw new KernelError("EPERM", "session expired: log in again");
  return claims;
}
