import { FsError } from "./errors.js";

/** Linux's NAME_MAX: the longest file name in bytes, as ext4 allows. */
export const NAME_MAX_BYTES = 255;

/**
 * Encodes one file name (any bytes but `/` and NUL) into the KV key alphabet `[-_=.A-Za-z0-9]`.
 * base64url without padding is reversible, uses only that alphabet and never yields `.`-only tokens,
 * so a name can never collide with the key separators.
 */
export function encodeName(name: string | Uint8Array): string {
  const bytes = typeof name === "string" ? nameToBytes(name) : Buffer.from(name);
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

const SURROGATE = /[\ud800-\udfff]/;
const ASCII = /^[\x00-\x7f]*$/;
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The core's strings carry a name's bytes as UTF-8, and each byte that is not part of valid UTF-8 as
 * a lone surrogate U+DC80–U+DCFF (Python's "surrogateescape"): any name but `/` and NUL round-trips,
 * and a UTF-8 name is the string it reads as. These two convert; `nameToBytes` writes other lone
 * surrogates as U+FFFD, as UTF-8 must.
 */
export function nameToBytes(name: string): Buffer {
  if (!SURROGATE.test(name)) return Buffer.from(name, "utf8");
  const bytes: number[] = [];
  for (const ch of name) {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c >= 0xdc80 && c <= 0xdcff) bytes.push(c - 0xdc00);
    else bytes.push(...Buffer.from(ch, "utf8"));
  }
  return Buffer.from(bytes);
}

export function bytesToName(bytes: Uint8Array): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    // Not all UTF-8: each byte that starts no valid sequence is escaped.
  }
  let name = "";
  for (let i = 0; i < bytes.length; ) {
    const n = utf8SequenceAt(bytes, i);
    if (n === 0) name += String.fromCharCode(0xdc00 + bytes[i]!);
    else name += STRICT_UTF8.decode(bytes.subarray(i, i + n));
    i += Math.max(n, 1);
  }
  return name;
}

/**
 * A path or name as CloudFS's fuse-native passes it (latin1: a character a byte, so any byte gets
 * through) in the core's form, and back. ASCII, nearly every path, is the same in both.
 */
export function kernelToName(path: string): string {
  return ASCII.test(path) ? path : bytesToName(Buffer.from(path, "latin1"));
}

export function nameToKernel(name: string): string {
  return ASCII.test(name) ? name : nameToBytes(name).toString("latin1");
}

/** The length of the valid UTF-8 sequence at `i` (RFC 3629: no overlongs, surrogates or > U+10FFFF), or 0. */
function utf8SequenceAt(b: Uint8Array, i: number): number {
  const lead = b[i]!;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return cont(1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const [lo, hi] = lead === 0xe0 ? [0xa0, 0xbf] : lead === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const [lo, hi] = lead === 0xf0 ? [0x90, 0xbf] : lead === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** Splits an absolute CloudFS path into its components; `/` is the empty list. */
export function splitPath(path: string): string[] {
  if (!path.startsWith("/")) throw new FsError("EINVAL", `not an absolute path: ${path}`);
  return path.split("/").filter((c) => c !== "" && c !== ".");
}
