import { describe, expect, it } from "vitest";
import { FS_ERRNO, FsError, toNegativeErrno } from "./errors.js";

describe("toNegativeErrno()", () => {
  it("maps codes through the one errno table", () => {
    expect(toNegativeErrno(new FsError("ENOENT", "x"))).toBe(-2);
    expect(toNegativeErrno(new FsError("ENOTEMPTY", "x"))).toBe(-39);
    expect(toNegativeErrno(new FsError("EACCES", "x"))).toBe(-13);
  });
  it("turns unknown failures into EIO", () => {
    expect(toNegativeErrno(new Error("nats gone"))).toBe(-FS_ERRNO.EIO);
  });
  it("uses Linux errno numbers", () => {
    expect(FS_ERRNO).toMatchObject({ EPERM: 1, EEXIST: 17, ENOTDIR: 20, EISDIR: 21, ENAMETOOLONG: 36, EXDEV: 18 });
  });
});
