import { describe, expect, it } from "vitest";
import { ReplayBuffer } from "./replay-buffer.js";

describe("ReplayBuffer", () => {
  it("keeps everything under its limit", () => {
    const r = new ReplayBuffer(10);
    r.push(Buffer.from("abc"));
    r.push(Buffer.from("def"));
    expect(r.contents().toString()).toBe("abcdef");
  });

  it("keeps only the newest `limit` bytes, cutting inside a chunk when needed", () => {
    const r = new ReplayBuffer(5);
    r.push(Buffer.from("abcd"));
    r.push(Buffer.from("efg"));
    expect(r.size).toBe(5);
    expect(r.contents().toString()).toBe("cdefg");
    r.push(Buffer.from("0123456789"));
    expect(r.contents().toString()).toBe("56789");
  });
});
