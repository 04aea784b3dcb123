import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { bytesToName, decodeName, encodeName, kernelToName, nameToBytes, nameToKernel, splitPath } from "./name-codec.js";
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

describe("nameToBytes() and bytesToName()", () => {
  const anyName = fc.uint8Array({ minLength: 1, maxLength: 255 }).filter((b) => !b.includes(0) && !b.includes(0x2f));
  it("round-trip any bytes, through the kernel's latin1 form too", () => {
    fc.assert(
      fc.property(anyName, (bytes) => {
        const name = bytesToName(bytes);
        expect(Buffer.compare(nameToBytes(name), Buffer.from(bytes))).toBe(0);
        const kernel = Buffer.from(bytes).toString("latin1");
        expect(kernelToName(kernel)).toBe(name);
        expect(nameToKernel(name)).toBe(kernel);
        expect(Buffer.compare(decodeName(encodeName(name)), Buffer.from(bytes))).toBe(0);
      }),
    );
  });
  it("reads UTF-8 as itself and escapes only the bytes that are not UTF-8", () => {
    expect(bytesToName(Buffer.from("é日本🎉", "utf8"))).toBe("é日本🎉");
    expect(bytesToName(Buffer.from([0x61, 0xff, 0xc3, 0xa9, 0xc3]))).toBe("a\udcffé\udcc3");
    // An overlong '/' and an encoded surrogate are not UTF-8: escaped byte by byte.
    expect(bytesToName(Buffer.from([0xc0, 0xaf]))).toBe("\udcc0\udcaf");
    expect(bytesToName(Buffer.from([0xed, 0xb2, 0x80]))).toBe("\udced\udcb2\udc80");
    expect(encodeName("a\udcff")).toBe(Buffer.from([0x61, 0xff]).toString("base64url"));
  });
});
