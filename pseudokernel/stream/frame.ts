/**
 * The binary frames of a stream. Data frames are on the hot path (hundreds of MB/s), so they are a
 * fixed 7-byte header and the payload, not msgpack: no allocation per field, no copy to decode.
 *
 * Offsets are byte positions in the stream, 48 bits (256 TiB), read with `readUIntBE(…, 6)`.
 */
import { KernelError, isErrorCode, type ErrorCode } from "../errors.js";

export const FrameType = { data: 1, eof: 2, reset: 3, ack: 4, ping: 5, offer: 6 } as const;

export type Frame =
  | { readonly type: "data"; readonly offset: number; readonly payload: Buffer }
  | { readonly type: "eof"; readonly offset: number }
  | { readonly type: "reset"; readonly code: ErrorCode; readonly message: string }
  | {
      readonly type: "ack";
      /** Every byte below this offset has arrived at the reader. */
      readonly received: number;
      /** Every byte below this offset has been taken by the reader's consumer. */
      readonly consumed: number;
      /** The writer may send up to `consumed + window`. */
      readonly window: number;
      /** The reader saw a gap: resend everything from `received`. */
      readonly resend: boolean;
      /** The reader has seen the end of the stream. */
      readonly eof: boolean;
    }
  | { readonly type: "ping" }
  /** Reader → writer: connect here for the direct data path (see direct-link.ts). */
  | { readonly type: "offer"; readonly host: string; readonly port: number; readonly token: Buffer };

export const DATA_HEADER_BYTES = 7;

export function encodeData(offset: number, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(DATA_HEADER_BYTES + payload.byteLength);
  frame[0] = FrameType.data;
  frame.writeUIntBE(offset, 1, 6);
  frame.set(payload, DATA_HEADER_BYTES);
  return frame;
}

/** The 7-byte header of a data frame, for senders that write header and payload separately. */
export function encodeDataHeader(offset: number): Buffer {
  const header = Buffer.allocUnsafe(DATA_HEADER_BYTES);
  header[0] = FrameType.data;
  header.writeUIntBE(offset, 1, 6);
  return header;
}

export function encodeOffer(host: string, port: number, token: Buffer): Buffer {
  const head = Buffer.allocUnsafe(3);
  head[0] = FrameType.offer;
  head.writeUInt16BE(port, 1);
  return Buffer.concat([head, token, Buffer.from(host, "utf8")]);
}

export function encodeEof(offset: number): Buffer {
  const frame = Buffer.allocUnsafe(7);
  frame[0] = FrameType.eof;
  frame.writeUIntBE(offset, 1, 6);
  return frame;
}

export function encodeReset(code: ErrorCode, message: string): Buffer {
  const codeBytes = Buffer.from(code, "latin1");
  const text = Buffer.from(message.slice(0, 1000), "utf8");
  return Buffer.concat([Buffer.from([FrameType.reset, codeBytes.length]), codeBytes, text]);
}

export function encodeAck(ack: Omit<Extract<Frame, { type: "ack" }>, "type">): Buffer {
  const frame = Buffer.allocUnsafe(18);
  frame[0] = FrameType.ack;
  frame.writeUIntBE(ack.received, 1, 6);
  frame.writeUIntBE(ack.consumed, 7, 6);
  frame.writeUInt32BE(ack.window, 13);
  frame[17] = (ack.resend ? 1 : 0) | (ack.eof ? 2 : 0);
  return frame;
}

export const PING_FRAME: Buffer = Buffer.from([FrameType.ping]);

/** Decodes a frame; throws `KernelError("EBADMSG")` on anything malformed (hostile input included). */
export function decodeFrame(bytes: Uint8Array): Frame {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string): never => {
    throw new KernelError("EBADMSG", `bad stream frame: ${why}`);
  };
  if (buf.length < 1) bad("empty");
  switch (buf[0]) {
    case FrameType.data:
      if (buf.length < DATA_HEADER_BYTES) bad("short data header");
      return { type: "data", offset: buf.readUIntBE(1, 6), payload: buf.subarray(DATA_HEADER_BYTES) };
    case FrameType.eof:
      if (buf.length !== 7) bad("eof length");
      return { type: "eof", offset: buf.readUIntBE(1, 6) };
    case FrameType.reset: {
      const len = buf[1] ?? bad("short reset");
      const code = buf.subarray(2, 2 + len).toString("latin1");
      return {
        type: "reset",
        code: isErrorCode(code) ? code : "EIO",
        message: buf.subarray(2 + len).toString("utf8"),
      };
    }
    case FrameType.ack: {
      if (buf.length !== 18) bad("ack length");
      const flags = buf[17] ?? 0;
      const frame = {
        type: "ack" as const,
        received: buf.readUIntBE(1, 6),
        consumed: buf.readUIntBE(7, 6),
        window: buf.readUInt32BE(13),
        resend: (flags & 1) !== 0,
        eof: (flags & 2) !== 0,
      };
      if (frame.consumed > frame.received) bad("consumed beyond received");
      return frame;
    }
    case FrameType.ping:
      return { type: "ping" };
    case FrameType.offer: {
      if (buf.length < 3 + 16 + 1 || buf.length > 3 + 16 + 255) bad("offer length");
      const port = buf.readUInt16BE(1);
      if (port === 0) bad("offer port");
      return { type: "offer", port, token: Buffer.from(buf.subarray(3, 19)), host: buf.subarray(19).toString("utf8") };
    }
    default:
      return bad(`unknown type ${buf[0]}`);
  }
}
