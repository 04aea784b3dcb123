import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeName, encodeName, splitPath } from "./name-codec.js";
import { FsError } from "./errors.js";

describe("encodeName()", () => {
  it("round-trips any bytes but '/' and NUL into the KV key alphabet", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 255 }).filter((b) => !b.includes(0) && !b.includes(0x2f)),
        (bytes) => {
          const enc = encodeName(bytes);
          expect(enc).toMatch(/^[-_=.A-Za-z0-9]+$/);
          expect(Buffer.compare(decodeName(enc), Buffer.from(bytes))).toBe(0);
        },
      ),
    );
  });
  it("rejects names longer than 255 bytes with ENAMETOOLONG", () => {
    expect(() => encodeName("x".repeat(256))).toThrow(expect.objectContaining({ code: "ENAMETOOLONG" }) as FsError);
    expect(encodeName("é".repeat(127))).toBeTypeOf("string");
    expect(() => encodeName("é".repeat(128))).toThrow(FsError);
  });
  it("rejects '/' and NUL", () => {
    expect(() => encodeName("a/b")).toThrow(FsError);
    expect(() => encodeName("a\0b")).toThrow(FsError);
  });
});

describe("splitPath()", () => {
  it("drops empty and '.' components", () => {
    expect(splitPath("/")).toEqual([]);
    expect(splitPath("//a/./b/")).toEqual(["a", "b"]);
  });
});
