import { KernelError } from "./errors.js";

/**
 * Small hand-checked validators for wire messages: every field read from the network goes through
 * one of these, so a hostile or truncated message becomes EBADMSG, never a crash or a wrong type.
 */

export type Obj = Record<string, unknown>;

export function bad(message: string): never {
  throw new KernelError("EBADMSG", message);
}

export function obj(value: unknown, what: string): Obj {
  if (typeof value !== "object" || value === null || Array.isArray(value)) bad(`${what}: not an object`);
  return value as Obj;
}

export function str(o: Obj, key: string, options: { max?: number; optional?: false } = {}): string {
  const v = o[key];
  if (typeof v !== "string") bad(`${key}: expected a string`);
  if (v.length > (options.max ?? 4096)) bad(`${key}: longer than ${options.max ?? 4096}`);
  return v;
}

export function optStr(o: Obj, key: string, max = 4096): string | undefined {
  return o[key] === undefined || o[key] === null ? undefined : str(o, key, { max });
}

export function int(o: Obj, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    bad(`${key}: expected an integer in [${min}, ${max}]`);
  }
  return v;
}

export function optInt(o: Obj, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  return o[key] === undefined || o[key] === null ? undefined : int(o, key, min, max);
}

export function strArray(o: Obj, key: string, maxItems = 4096, maxLength = 128 * 1024): string[] {
  const v = o[key];
  if (!Array.isArray(v) || v.length > maxItems) bad(`${key}: expected an array of at most ${maxItems} strings`);
  return v.map((item, i) => {
    if (typeof item !== "string") bad(`${key}[${i}]: expected a string`);
    if (item.length > maxLength) bad(`${key}[${i}]: too long (${item.length} characters; at most ${maxLength})`);
    return item;
  });
}

export function strRecord(o: Obj, key: string, maxItems = 4096): Record<string, string> {
  const v = obj(o[key], key);
  const entries = Object.entries(v);
  if (entries.length > maxItems) bad(`${key}: more than ${maxItems} entries`);
  const out: Record<string, string> = {};
  for (const [k, val] of entries) {
    if (typeof val !== "string" || val.length > 128 * 1024) bad(`${key}.${k}: expected a string`);
    out[k] = val;
  }
  return out;
}

export function oneOf<T extends string>(o: Obj, key: string, values: readonly T[]): T {
  const v = o[key];
  if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
    bad(`${key}: expected one of ${values.join(", ")}`);
  }
  return v as T;
}
