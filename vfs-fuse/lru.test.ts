import { describe, expect, it } from "vitest";
import { LruMap } from "./lru.js";

describe("LruMap", () => {
  it("evicts least recently used entries beyond its byte budget", () => {
    const evicted: string[] = [];
    const lru = new LruMap<string, number>(10, (k) => evicted.push(k));
    lru.set("a", 1, 4);
    lru.set("b", 2, 4);
    lru.get("a");
    lru.set("c", 3, 4);
    expect(evicted).toEqual(["b"]);
    expect(lru.bytes).toBe(8);
    expect([...lru.keys()]).toEqual(["a", "c"]);
  });
  it("keeps an entry larger than the budget only until the next insert", () => {
    const lru = new LruMap<string, number>(2);
    lru.set("big", 1, 5);
    expect(lru.has("big")).toBe(true);
    lru.set("x", 2, 1);
    expect(lru.has("big")).toBe(false);
  });
  it("replacing a key updates the byte count", () => {
    const lru = new LruMap<string, number>(100);
    lru.set("a", 1, 10);
    lru.set("a", 2, 20);
    expect(lru.bytes).toBe(20);
    expect(lru.get("a")).toBe(2);
  });
});
