import { encode } from "../../pseudokernel/index.js";

/**
 * Hostile payloads for the kernel's subjects: random bytes, msgpack of the wrong shape, real messages
 * mutated, and well-formed messages with hostile values. Seeded, so a failing run can be replayed with
 * `FUZZ_SEED=<seed>`.
 */

/** mulberry32: small, fast, good enough to pick cases; reproducible from one 32-bit seed. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      const word = (this.next() * 4294967296) >>> 0;
      out[i] = word & 0xff;
      if (i + 1 < length) out[i + 1] = (word >>> 8) & 0xff;
      if (i + 2 < length) out[i + 2] = (word >>> 16) & 0xff;
      if (i + 3 < length) out[i + 3] = word >>> 24;
    }
    return out;
  }
}

/** Strings a validator must survive: traversal, NUL, unicode, control bytes, subject wildcards, long. */
export const HOSTILE_STRINGS: readonly string[] = [
  "",
  "../../etc/passwd",
  "/../../../etc/shadow",
  "/home/root/../../etc/passwd",
  "%2e%2e/%2e%2e/etc/passwd",
  "..\\..\\windows",
  "/etc/passwd\0.txt",
  "\0",
  "a\0b",
  "*",
  ">",
  "a.b.c",
  "oneos.node.n1.spawn",
  "_INBOX.>",
  " ",
  "\r\n",
  "\u001b[2J\u001b]0;pwned\u0007",
  "\u202e\u0645\u0631\u062d\u0628\u0627",
  "\ud800",
  "\uffff\ufffe",
  "😀".repeat(64),
  "root",
  "nobody",
  "__proto__",
  "constructor",
  "toString",
  "-1",
  "NaN",
  "x".repeat(65),
  "x".repeat(4097),
  "y".repeat(70_000),
];

export const HOSTILE_NUMBERS: readonly number[] = [
  0,
  -1,
  -0,
  1,
  0.5,
  -(2 ** 31),
  2 ** 31,
  2 ** 32,
  2 ** 48,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 63,
  -(2 ** 63),
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  1e308,
  65536,
  10_001,
  0o1000,
];

/** A value of some shape, often the wrong one. `depth` bounds nesting of the random structure. */
export function randomValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 3 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return rng.pick(HOSTILE_NUMBERS);
    case 2:
      return rng.pick(HOSTILE_STRINGS);
    case 3:
      return rng.next() < 0.5;
    case 4:
      return rng.bytes(rng.int(64));
    case 5:
      return rng.int(2 ** 31) - 2 ** 30;
    case 6:
      return Array.from({ length: rng.int(5) }, () => randomValue(rng, depth + 1));
    case 7: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(5); i > 0; i--) setOwn(o, rng.pick(FIELD_NAMES), randomValue(rng, depth + 1));
      return o;
    }
    default:
      return undefined;
  }
}

const FIELD_NAMES = [
  "type", "pid", "argv", "env", "cwd", "user", "stdio", "path", "op", "mode", "stream", "notify", "signal",
  "cols", "rows", "input", "output", "name", "state", "heartbeat", "port", "toOwner", "toCaller", "tty",
  "resources", "ended", "__proto__", "constructor",
];

/** `o[key] = value` that makes `__proto__` an own key (sent on the wire), not the object's prototype. */
function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Deeply nested arrays or maps, written as raw msgpack (the encoder would recurse as deep as we ask). */
export function deepNesting(rng: Rng): Uint8Array {
  const depth = rng.pick([100, 1000, 10_000, 200_000]);
  const open = rng.next() < 0.5 ? 0x91 /* fixarray(1) */ : 0x81; /* fixmap(1) */
  if (open === 0x91) return Uint8Array.from([...new Array<number>(depth).fill(0x91), 0xc0]);
  // fixmap(1) { "a": ... }
  const out = new Uint8Array(depth * 3 + 1);
  for (let i = 0; i < depth; i++) out.set([0x81, 0xa1, 0x61], i * 3);
  out[depth * 3] = 0xc0;
  return out;
}

/** msgpack headers that promise more than follows (huge arrays, maps, strings, binaries, extensions). */
export const LYING_HEADERS: readonly Uint8Array[] = [
  Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]),
  Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff]),
  Uint8Array.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]),
  Uint8Array.from([0xc6, 0x7f, 0xff, 0xff, 0xff]),
  Uint8Array.from([0xc9, 0xff, 0xff, 0xff, 0xff, 0x01]),
  Uint8Array.from([0xc7, 0x04, 0x78, 0, 0, 0, 0, 0x2f]), // RegExp extension
  Uint8Array.from([0xd6, 0xff, 0, 0, 0, 0]), // timestamp
  Uint8Array.from([0xd4, 0x65, 0x00]), // error extension, truncated
  Uint8Array.from([0xc1]), // never used
  Uint8Array.from([0xc0]), // nil
  Uint8Array.from([0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]), // NaN
  Uint8Array.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // uint64 max
  Uint8Array.from([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]), // int64 min
];

/** A valid message changed: truncated, bit-flipped, a field removed, retyped or added. */
export function mutate(rng: Rng, message: Record<string, unknown>): Uint8Array {
  switch (rng.int(6)) {
    case 0: {
      const bytes = encode(message);
      return bytes.subarray(0, rng.int(bytes.length));
    }
    case 1: {
      const bytes = Uint8Array.from(encode(message));
      for (let n = 1 + rng.int(3); n > 0; n--) {
        const at = rng.int(bytes.length);
        bytes[at] = bytes[at]! ^ (1 << rng.int(8));
      }
      return bytes;
    }
    case 2: {
      const copy = { ...message };
      const keys = Object.keys(copy);
      delete copy[rng.pick(keys)];
      return encode(copy);
    }
    case 3: {
      const copy = { ...message };
      setOwn(copy, rng.pick(Object.keys(copy)), randomValue(rng));
      return encode(copy);
    }
    case 4: {
      const copy: Record<string, unknown> = { ...message };
      setOwn(copy, rng.pick(FIELD_NAMES), randomValue(rng));
      return encode(copy);
    }
    default: {
      // The valid message with trailing garbage.
      const bytes = encode(message);
      const out = new Uint8Array(bytes.length + 1 + rng.int(32));
      out.set(bytes);
      out.set(rng.bytes(out.length - bytes.length), bytes.length);
      return out;
    }
  }
}

/** One payload of a random kind: `templates` are valid messages for the subject, `hostile` valid-looking ones. */
export function payload(
  rng: Rng,
  templates: readonly Record<string, unknown>[],
  hostile: (rng: Rng) => Record<string, unknown>,
): { kind: string; bytes: Uint8Array } {
  const roll = rng.int(100);
  if (roll < 25) return { kind: "random-bytes", bytes: rng.bytes(rng.next() < 0.9 ? rng.int(256) : rng.int(8192)) };
  if (roll < 33) return { kind: "wrong-type", bytes: encode(randomValue(rng)) };
  if (roll < 36) return { kind: "lying-header", bytes: rng.pick(LYING_HEADERS) };
  if (roll < 37) return { kind: "deep-nesting", bytes: deepNesting(rng) };
  if (roll < 40) return { kind: "long-string", bytes: encode(rng.pick(["x", "\0", "é", "😀"]).repeat(rng.int(200_000))) };
  if (roll < 75 && templates.length > 0) return { kind: "mutated", bytes: mutate(rng, rng.pick(templates)) };
  return { kind: "hostile-values", bytes: encode(hostile(rng)) };
}
