import { describe, expect, it } from "vitest";
import { atimeDue } from "./atime.js";

describe("relatime", () => {
  const now = 10 * 86_400_000;
  it("moves an atime that is not after the mtime, or not after the ctime", () => {
    expect(atimeDue(now - 100, { mtimeMs: now - 50, ctimeMs: now - 200 }, now)).toBe(true);
    expect(atimeDue(now - 100, { mtimeMs: now - 200, ctimeMs: now - 100 }, now)).toBe(true);
  });
  it("leaves an atime after both that is less than a day old, and moves it once it is a day old", () => {
    expect(atimeDue(now - 100, { mtimeMs: now - 200, ctimeMs: now - 300 }, now)).toBe(false);
    expect(atimeDue(now - 86_400_000, { mtimeMs: now - 2 * 86_400_000, ctimeMs: now - 2 * 86_400_000 }, now)).toBe(true);
  });
});
