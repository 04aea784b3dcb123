import { ApiError } from "./api-error.js";
import { PATH_MAX_BYTES } from "./limits.js";

/**
 * A path from the browser, checked and normalised to an absolute CloudFS path. `.` and `..` segments are
 * refused rather than resolved, so no spelling of a path can name anything outside CloudFS (nor surprise
 * the user by landing elsewhere in it).
 *
 * @example
 * cloudPath("/home//alice/") // "/home/alice"
 * cloudPath("/home/../etc")  // throws ApiError 400 EINVAL
 */
export function cloudPath(raw: unknown): string {
  if (typeof raw !== "string" || raw === "") throw new ApiError(400, "EINVAL", "a path is required");
  if (Buffer.byteLength(raw) > PATH_MAX_BYTES) throw new ApiError(400, "ENAMETOOLONG", "path too long");
  if (!raw.startsWith("/")) throw new ApiError(400, "EINVAL", `path must be absolute: ${raw}`);
  if (raw.includes("\0")) throw new ApiError(400, "EINVAL", "path contains a NUL byte");
  const parts = raw.split("/").filter((p) => p !== "");
  for (const part of parts) {
    if (part === "." || part === "..") {
      throw new ApiError(400, "EINVAL", `path may not contain '.' or '..' segments (it must stay inside CloudFS): ${raw}`);
    }
  }
  return "/" + parts.join("/");
}

/** A single file name (no slashes): for uploads and new folders named in a directory. */
export function fileName(raw: unknown): string {
  if (typeof raw !== "string" || raw === "" || raw === "." || raw === ".." || raw.includes("/") || raw.includes("\0")) {
    throw new ApiError(400, "EINVAL", `not a valid file name: ${String(raw)}`);
  }
  return raw;
}

/** The parent directory of an absolute CloudFS path ("/" for "/x"). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}
