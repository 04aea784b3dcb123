import { describe, expect, it } from "vitest";
import { applyLock, conflictingLock, fcntlRange, holdsAny, LOCK_TO_EOF, type FileLock, type LockRequest } from "./locks.js";

const req = (owner: string, type: LockRequest["type"], start = 0, end = LOCK_TO_EOF, node = "n1", kind: LockRequest["kind"] = "posix"): LockRequest => ({
  kind,
  type,
  node,
  session: "s",
  owner,
  pid: 1,
  start,
  end,
});
const ranges = (locks: FileLock[]): string[] => locks.map((l) => `${l.owner}:${l.type}:${l.start}-${l.end === LOCK_TO_EOF ? "eof" : l.end}`).sort();

describe("file locks", () => {
  it("read locks share, a write lock excludes, across owners and nodes", () => {
    let t = applyLock([], req("a", "r"));
    expect(conflictingLock(t, req("b", "r", 0, LOCK_TO_EOF, "n2"))).toBeUndefined();
    t = applyLock(t, req("b", "r", 0, LOCK_TO_EOF, "n2"));
    expect(conflictingLock(t, req("c", "w", 10, 20))?.owner).toBe("a");
    // The owner's own locks never conflict with its request: an upgrade conflicts only with b.
    expect(conflictingLock(t, req("a", "w"))?.owner).toBe("b");
  });

  it("an unlock in the middle splits a lock, and adjoining locks of one owner merge", () => {
    let t = applyLock([], req("a", "w", 0, 99));
    t = applyLock(t, req("a", "u", 40, 59));
    expect(ranges(t)).toEqual(["a:w:0-39", "a:w:60-99"]);
    expect(conflictingLock(t, req("b", "w", 40, 59))).toBeUndefined();
    expect(conflictingLock(t, req("b", "r", 59, 60))?.start).toBe(60);
    t = applyLock(t, req("a", "w", 40, 59));
    expect(ranges(t)).toEqual(["a:w:0-99"]);
    t = applyLock(t, req("a", "r", 10, 19));
    expect(ranges(t)).toEqual(["a:r:10-19", "a:w:0-9", "a:w:20-99"]);
  });

  it("flock and POSIX locks do not see each other", () => {
    const t = applyLock([], req("a", "w", 0, LOCK_TO_EOF, "n1", "flock"));
    expect(conflictingLock(t, req("b", "w"))).toBeUndefined();
    expect(conflictingLock(t, req("b", "r", 0, LOCK_TO_EOF, "n2", "flock"))?.owner).toBe("a");
    expect(holdsAny(t, { node: "n1", session: "s", owner: "a" })).toBe(true);
    expect(applyLock(t, req("a", "u", 0, LOCK_TO_EOF, "n1", "flock"))).toEqual([]);
  });

  it("fcntl ranges: length 0 to the end of the file, negative lengths before the start", () => {
    expect(fcntlRange(5, 0)).toEqual({ start: 5, end: LOCK_TO_EOF });
    expect(fcntlRange(5, 10)).toEqual({ start: 5, end: 14 });
    expect(fcntlRange(10, -4)).toEqual({ start: 6, end: 9 });
    expect(fcntlRange(2, -4)).toBeUndefined();
  });
});
