import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BLOCK_SIZE, blockCount, blockSlices } from "./block-math.js";

describe("blockSlices()", () => {
  it("cuts a range into contiguous per-block pieces that cover it exactly", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 5 * BLOCK_SIZE }), (off, len) => {
        const s = blockSlices(off, len);
        expect(s.reduce((a, x) => a + x.length, 0)).toBe(len);
        let pos = off;
        for (const x of s) {
          expect(x.index * BLOCK_SIZE + x.start).toBe(pos);
          expect(x.start + x.length).toBeLessThanOrEqual(BLOCK_SIZE);
          expect(x.bufferOffset).toBe(pos - off);
          pos += x.length;
        }
      }),
    );
  });
  it("is exact past 4 GiB", () => {
    const off = 5 * 1024 ** 3 + 17;
    expect(blockSlices(off, 10)).toEqual([{ index: 5120, start: 17, length: 10, bufferOffset: 0 }]);
  });
  it("counts blocks", () => {
    expect(blockCount(0)).toBe(0);
    expect(blockCount(1)).toBe(1);
    expect(blockCount(BLOCK_SIZE + 1)).toBe(2);
  });
});
