import { Packr } from "msgpackr";

/**
 * The one msgpack codec for kernel messages. Records are off (plain maps) so any client in any
 * language can read them; `useRecords: false` also keeps hostile input from defining structures.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: "number" });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes msgpack; throws on malformed input (callers turn that into EBADMSG). */
export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
