import { FsError } from "./errors.js";

/** Linux's NAME_MAX: the longest file name in bytes, as ext4 allows. */
export const NAME_MAX_BYTES = 255;

/**
 * Encodes one file name (any bytes but `/` and NUL) into the KV key alphabet `[-_=.A-Za-z0-9]`.
 * base64url without padding is reversible, uses only that alphabet and never yields `.`-only tokens,
 * so a name can never collide with the key separators.
 */
export function encodeName(name: string | Uint8Array): string {
  const bytes = typeof name === "string" ? Buffer.from(name, "utf8") : Buffer.from(name);
  validateNameBytes(bytes);
  return bytes.toString("base64url");
}

export function decodeName(encoded: string): Buffer {
  return Buffer.from(encoded, "base64url");
}

export function validateNameBytes(bytes: Uint8Array): void {
  if (bytes.length === 0) throw new FsError("ENOENT", "empty file name");
  if (bytes.length > NAME_MAX_BYTES) throw new FsError("ENAMETOOLONG", `name of ${bytes.length} bytes`);
  for (const b of bytes) {
    if (b === 0x2f || b === 0) throw new FsError("EINVAL", "a name may not contain '/' or NUL");
  }
}

/** Splits an absolute CloudFS path into its components; `/` is the empty list. */
export function splitPath(path: string): string[] {
  if (!path.startsWith("/")) throw new FsError("EINVAL", `not an absolute path: ${path}`);
  return path.split("/").filter((c) => c !== "" && c !== ".");
}
