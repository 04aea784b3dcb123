import { Packr } from "msgpackr";
import { KernelError } from "./errors.js";

/**
 * The one msgpack codec for kernel messages. Records are off (plain maps) so any client in any
 * language can read them; `useRecords: false` also keeps hostile input from defining structures.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: "number" });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/**
 * Decodes msgpack; malformed input (truncated, unknown extension, nesting deep enough to overflow the
 * stack) throws EBADMSG, so a handler answers it like any other invalid message instead of logging it
 * as a failure of its own.
 */
export function decode(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new KernelError("EBADMSG", `malformed msgpack: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
