import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { LoginSessions, sameOrigin } from "./login-sessions.js";

function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

describe("LoginSessions", () => {
  it("accepts only the exact token", () => {
    const login = new LoginSessions(8080, "secret-token");
    expect(login.tokenMatches("secret-token")).toBe(true);
    expect(login.tokenMatches("secret-tokeN")).toBe(false);
    expect(login.tokenMatches("")).toBe(false);
    expect(login.tokenMatches(undefined)).toBe(false);
  });

  it("opens an httpOnly SameSite=Strict session cookie that identifies the session", () => {
    const login = new LoginSessions(8080, "t");
    const cookie = login.open();
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const pair = cookie.split(";")[0]!;
    expect(login.sessionOf(request({ cookie: `other=1; ${pair}` }))).not.toBeNull();
    expect(login.sessionOf(request({ cookie: `${login.cookieName}=forged` }))).toBeNull();
  });

  it("forgets a closed session", () => {
    const login = new LoginSessions(8080, "t");
    const pair = login.open().split(";")[0]!;
    const id = login.sessionOf(request({ cookie: pair }))!;
    login.close(id);
    expect(login.sessionOf(request({ cookie: pair }))).toBeNull();
  });
});

describe("sameOrigin()", () => {
  it("accepts the page's own origin and refuses others or none", () => {
    expect(sameOrigin(request({ host: "127.0.0.1:80", origin: "http://127.0.0.1:80" }))).toBe(true);
    expect(sameOrigin(request({ host: "127.0.0.1:80", origin: "http://evil.example" }))).toBe(false);
    expect(sameOrigin(request({ host: "127.0.0.1:80" }))).toBe(false);
  });
});
