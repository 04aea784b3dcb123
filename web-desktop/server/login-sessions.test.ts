import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { LoginSessions, sameOrigin } from "./login-sessions.js";
import { OwnerToken } from "./owner-token.js";

function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

/** A stand-in for a cluster login: it expires at `exp`. */
interface FakeLogin {
  readonly user: string;
  exp: number;
}

function sessions(ended: string[] = [], idleMs = 60_000): LoginSessions<FakeLogin> {
  return new LoginSessions<FakeLogin>(8080, { expired: (l, now) => l.exp <= now, onEnd: (_id, l) => ended.push(l.user), idleMs });
}

function cookieOf(setCookie: string): string {
  return setCookie.split(";")[0]!;
}

describe("OwnerToken", () => {
  it("accepts only the exact token", () => {
    const owner = new OwnerToken("secret-token");
    expect(owner.matches("secret-token")).toBe(true);
    expect(owner.matches("secret-tokeN")).toBe(false);
    expect(owner.matches("")).toBe(false);
    expect(owner.matches(undefined)).toBe(false);
  });
});

describe("LoginSessions", () => {
  it("opens an httpOnly SameSite=Strict session cookie that identifies the login and what it holds", () => {
    const login = sessions();
    const cookie = login.open({ user: "alice", exp: Date.now() + 60_000 });
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(login.sessionOf(request({ cookie: `other=1; ${cookieOf(cookie)}` }))?.value.user).toBe("alice");
    expect(login.sessionOf(request({ cookie: `${login.cookieName}=forged` }))).toBeNull();
  });

  it("forgets a closed login and tells its owner once", () => {
    const ended: string[] = [];
    const login = sessions(ended);
    const pair = cookieOf(login.open({ user: "alice", exp: Date.now() + 60_000 }));
    const entry = login.sessionOf(request({ cookie: pair }))!;
    login.close(entry.id);
    login.close(entry.id);
    expect(login.sessionOf(request({ cookie: pair }))).toBeNull();
    expect(ended).toEqual(["alice"]);
  });

  it("ends a login when its cluster session expires, and an idle one at the sweep", () => {
    const ended: string[] = [];
    const login = sessions(ended, 1000);
    const now = Date.now();
    const alice = cookieOf(login.open({ user: "alice", exp: now + 500 }, now));
    login.open({ user: "bob", exp: now + 60_000 }, now);
    expect(login.sessionOf(request({ cookie: alice }), now + 100)).not.toBeNull();
    expect(login.sessionOf(request({ cookie: alice }), now + 600)).toBeNull();
    expect(ended).toEqual(["alice"]);
    login.sweep(now + 1500);
    expect(ended).toEqual(["alice", "bob"]);
    expect(login.size).toBe(0);
  });
});

describe("sameOrigin()", () => {
  it("accepts the page's own origin and refuses others or none", () => {
    expect(sameOrigin(request({ host: "127.0.0.1:80", origin: "http://127.0.0.1:80" }))).toBe(true);
    expect(sameOrigin(request({ host: "127.0.0.1:80", origin: "http://evil.example" }))).toBe(false);
    expect(sameOrigin(request({ host: "127.0.0.1:80" }))).toBe(false);
  });
});
