import { describe, expect, it } from "vitest";
import { backoffMs, parseServiceDefinition, shouldRestart } from "./service-record.js";

describe("service records", () => {
  it("restarts at once after a first failure, then backs off 1 s, 2 s, 4 s ... up to 30 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(backoffMs)).toEqual([0, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it("on-failure restarts non-zero exits and lost nodes, never restarts nothing", () => {
    expect(shouldRestart("on-failure", 0, false)).toBe(false);
    expect(shouldRestart("on-failure", 1, false)).toBe(true);
    expect(shouldRestart("on-failure", 0, true)).toBe(true);
    expect(shouldRestart("always", 0, false)).toBe(true);
    expect(shouldRestart("never", 1, true)).toBe(false);
  });

  it("validates stored definitions (the bucket is writable by any client)", () => {
    const good = {
      name: "web",
      argv: ["sleep", "1"],
      env: {},
      cwd: "/",
      user: "root",
      restart: "always",
      placement: { labels: [{ key: "zone", op: "in", values: ["a"] }], resources: { cpu: 1, mem: 0 } },
      created: 1,
    };
    expect(parseServiceDefinition(good).placement.labels[0]?.key).toBe("zone");
    expect(() => parseServiceDefinition({ ...good, argv: [] })).toThrow(/argv/);
    expect(() => parseServiceDefinition({ ...good, restart: "sometimes" })).toThrow(/restart/);
    expect(() => parseServiceDefinition({ ...good, cwd: "tmp" })).toThrow(/cwd/);
  });
});
