import { describe, expect, it } from "vitest";
import { cloudPath, fileName, parentOf } from "./cloud-path.js";

describe("cloudPath()", () => {
  it("normalises repeated and trailing slashes", () => {
    expect(cloudPath("/home//alice/")).toBe("/home/alice");
    expect(cloudPath("/")).toBe("/");
  });

  it("refuses every '..' or '.' segment, wherever it is", () => {
    for (const p of ["/..", "/home/..", "/home/../etc", "/home/./x", "/a/b/../../..", "/home/%2e%2e/../x"]) {
      expect(() => cloudPath(p), p).toThrow(/'\.\.' segments/);
    }
  });

  it("refuses relative paths, NUL bytes, non-strings and empty strings", () => {
    expect(() => cloudPath("home")).toThrow(/absolute/);
    expect(() => cloudPath("/a\0b")).toThrow(/NUL/);
    expect(() => cloudPath(["/home"])).toThrow(/required/);
    expect(() => cloudPath("")).toThrow(/required/);
  });

  it("keeps names that merely contain dots", () => {
    expect(cloudPath("/home/..hidden/a..b/.x")).toBe("/home/..hidden/a..b/.x");
  });
});

describe("fileName()", () => {
  it("accepts plain names and refuses slashes and dot names", () => {
    expect(fileName("notes.txt")).toBe("notes.txt");
    for (const n of ["a/b", "..", ".", "", "x\0"]) expect(() => fileName(n)).toThrow();
  });
});

describe("parentOf()", () => {
  it("gives the containing directory", () => {
    expect(parentOf("/home/a/b")).toBe("/home/a");
    expect(parentOf("/home")).toBe("/");
  });
});
