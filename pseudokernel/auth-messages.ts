import type { WireError } from "./errors.js";
import { parseWireError } from "./messages.js";
import { USER_NAME_PATTERN } from "./session.js";
import { AUTH_SUBJECTS } from "./subjects.js";
import { bad, int, obj, oneOf, optInt, optStr, str, type Obj } from "./validate.js";

/**
 * Wire messages of the users-and-sessions service (`AUTH_SUBJECTS`). Requests that act for someone
 * carry that someone's session token in the `Oneos-Session` header, not in the body.
 */

/** A user as anyone may see it (no password hash). */
export interface UserInfo {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** Longest session a login may ask for; also the default. */
export const MAX_SESSION_MS = 12 * 3600_000;

export type AuthRequest =
  /** Name + password → a session (`ttlMs` shortens it). */
  | { readonly type: "login"; readonly user: string; readonly password: string; readonly ttlMs?: number }
  /** The header's live session → a fresh one. */
  | { readonly type: "refresh" }
  /** A session for any user without a password: only the admin identity may publish on `issue`. */
  | { readonly type: "issue"; readonly user: string; readonly ttlMs?: number }
  /** root only. */
  | { readonly type: "useradd"; readonly name: string; readonly password?: string }
  /** root only. */
  | { readonly type: "userdel"; readonly name: string }
  /** root for anyone; a user for themself, with the old password. */
  | { readonly type: "passwd"; readonly name: string; readonly password: string; readonly old?: string }
  /** Every user (root's session), or just one by name (anyone). */
  | { readonly type: "users"; readonly name?: string };

export type AuthReply =
  | { readonly type: "session"; readonly token: string; readonly exp: number; readonly user: UserInfo }
  | { readonly type: "users"; readonly users: readonly UserInfo[] }
  | { readonly type: "done" }
  | { readonly type: "error"; readonly error: WireError };

/** The subject a request of this type goes to. */
export function authSubject(type: AuthRequest["type"]): string {
  return type === "login" || type === "refresh" || type === "issue" ? AUTH_SUBJECTS[type] : AUTH_SUBJECTS.users;
}

function userName(o: Obj, key: string): string {
  const name = str(o, key, { max: 32 });
  if (!USER_NAME_PATTERN.test(name)) bad(`${key}: '${name}' is not a valid user name (a-z, 0-9, _ and -, up to 32)`);
  return name;
}

function password(o: Obj, key: string): string {
  const p = str(o, key, { max: 1024 });
  if (p.length === 0) bad(`${key}: empty password`);
  return p;
}

export function parseAuthRequest(value: unknown): AuthRequest {
  const o = obj(value, "request");
  const type = oneOf(o, "type", ["login", "refresh", "issue", "useradd", "userdel", "passwd", "users"] as const);
  const ttlMs = optInt(o, "ttlMs", 1, MAX_SESSION_MS);
  switch (type) {
    case "login":
      return { type, user: userName(o, "user"), password: str(o, "password", { max: 1024 }), ...(ttlMs !== undefined ? { ttlMs } : {}) };
    case "refresh":
      return { type };
    case "issue":
      return { type, user: userName(o, "user"), ...(ttlMs !== undefined ? { ttlMs } : {}) };
    case "useradd": {
      const p = o["password"] === undefined || o["password"] === null ? undefined : password(o, "password");
      return { type, name: userName(o, "name"), ...(p !== undefined ? { password: p } : {}) };
    }
    case "userdel":
      return { type, name: userName(o, "name") };
    case "passwd": {
      const old = optStr(o, "old", 1024);
      return { type, name: userName(o, "name"), password: password(o, "password"), ...(old !== undefined ? { old } : {}) };
    }
    case "users":
      return o["name"] === undefined || o["name"] === null ? { type } : { type, name: userName(o, "name") };
  }
}

function parseUserInfo(value: unknown): UserInfo {
  const o = obj(value, "user");
  return { name: userName(o, "name"), uid: int(o, "uid", 0, 2 ** 31), gid: int(o, "gid", 0, 2 ** 31), home: str(o, "home", { max: 4096 }) };
}

export function parseAuthReply(value: unknown): AuthReply {
  const o = obj(value, "reply");
  const type = oneOf(o, "type", ["session", "users", "done", "error"] as const);
  switch (type) {
    case "session":
      return { type, token: str(o, "token", { max: 4096 }), exp: int(o, "exp"), user: parseUserInfo(o["user"]) };
    case "users": {
      const list = o["users"];
      if (!Array.isArray(list) || list.length > 100_000) bad("users: expected an array");
      return { type, users: list.map(parseUserInfo) };
    }
    case "done":
      return { type };
    case "error":
      return { type, error: parseWireError(o["error"]) };
  }
}
