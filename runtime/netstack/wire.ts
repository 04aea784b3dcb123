import { KernelError } from "../../pseudokernel/index.js";

/**
 * The netstack's messages, decoded and checked at the edge: the cross-node connect request and reply,
 * and the port registry's records.
 */

/** `oneos.netstack.<node>.connect`: a caller's runtime asks the port's owner to open a connection. */
export function netstackConnectSubject(node: string): string {
  return `oneos.netstack.${node}.connect`;
}

export interface ConnectRequest {
  readonly type: "connect";
  readonly port: number;
  /** Stream the caller writes (caller → owner). */
  readonly toOwner: string;
  /** Stream the owner writes (owner → caller). */
  readonly toCaller: string;
  /** The client's first bytes, if it sent any at once: bytes 0..n of `toOwner`, which continues after them. */
  readonly data?: Uint8Array;
}

/** Most first bytes a connect request carries. */
export const MAX_EARLY_BYTES = 64 * 1024;

/**
 * A caller's runtime asks the owner for a peer link (pseudokernel `PeerLink`) on the same subject:
 * where the owner is to connect, with what token. The owner answers with its own offer (`LinkReply`).
 */
export interface LinkOffer {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly token: Uint8Array;
}
export type LinkRequest = LinkOffer & { readonly type: "link" };
export type LinkReply = LinkOffer & { readonly type: "linked" };

/** The subject a connect request takes over a peer link (the link's own namespace, not NATS's). */
export const LINK_CONNECT_SUBJECT = "connect";

export type ConnectReply = { readonly type: "connected" } | { readonly type: "refused"; readonly code: string; readonly message: string };

/** One listening port in the cluster registry (bucket `oneos_ports`, key = the port number). */
export interface PortRecord {
  readonly port: number;
  readonly node: string;
  /** The oneos pid of the listening process, when it is one the runtime started; else null. */
  readonly pid: number | null;
  readonly hostPid: number | null;
  readonly command: string;
  /** Local addresses it listens on, as `ss` shows them (`0.0.0.0`, `::`, `127.0.0.1`, ...). */
  readonly addresses: readonly string[];
  readonly since: number;
}

type Obj = Record<string, unknown>;

function object(value: unknown, what: string): Obj {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new KernelError("EBADMSG", `${what}: not an object`);
  return value as Obj;
}
function str(o: Obj, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new KernelError("EBADMSG", `${what}: ${key} must be a string`);
  return v;
}
function port(o: Obj, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) throw new KernelError("EBADMSG", `${what}: ${key} must be a port`);
  return v;
}

/**
 * A stream id becomes a subject token (`oneos.stream.<id>.w`): `*`, `>`, `.` or a space in it would
 * subscribe to other streams or make an invalid subject, so only the kernel's stream-id alphabet passes.
 */
function streamId(o: Obj, key: string): string {
  const id = str(o, key, "connect");
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new KernelError("EBADMSG", `connect: ${key} is not a stream id`);
  return id;
}

export function parseConnectRequest(value: unknown): ConnectRequest {
  const o = object(value, "connect request");
  if (o["type"] !== "connect") throw new KernelError("EBADMSG", "not a connect request");
  const request = { type: "connect" as const, port: port(o, "port", "connect"), toOwner: streamId(o, "toOwner"), toCaller: streamId(o, "toCaller") };
  const data = o["data"];
  if (data === undefined) return request;
  if (!(data instanceof Uint8Array) || data.length > MAX_EARLY_BYTES) throw new KernelError("EBADMSG", "connect: data must be at most 64 KiB of bytes");
  return { ...request, data };
}

/** Either request an owner answers on `oneos.netstack.<node>.connect`. */
export function parseNetstackRequest(value: unknown): ConnectRequest | LinkRequest {
  const o = object(value, "netstack request");
  return o["type"] === "link" ? { type: "link", ...linkOffer(o, "link request") } : parseConnectRequest(o);
}

export function parseLinkReply(value: unknown): LinkReply {
  const o = object(value, "link reply");
  if (o["type"] === "refused") throw new KernelError("EIO", `link refused: ${str(o, "message", "refused")}`);
  if (o["type"] !== "linked") throw new KernelError("EBADMSG", "not a link reply");
  return { type: "linked", ...linkOffer(o, "link reply") };
}

function linkOffer(o: Obj, what: string): LinkOffer {
  const token = o["token"];
  if (!(token instanceof Uint8Array) || token.length !== 16) throw new KernelError("EBADMSG", `${what}: token must be 16 bytes`);
  const host = str(o, "host", what);
  if (host.length === 0 || host.length > 255) throw new KernelError("EBADMSG", `${what}: host`);
  return { id: streamId(o, "id"), host, port: port(o, "port", what), token };
}

export function parseConnectReply(value: unknown): ConnectReply {
  const o = object(value, "connect reply");
  if (o["type"] === "connected") return { type: "connected" };
  if (o["type"] === "refused") return { type: "refused", code: str(o, "code", "refused"), message: str(o, "message", "refused") };
  throw new KernelError("EBADMSG", "not a connect reply");
}

export function parsePortRecord(value: unknown): PortRecord {
  const o = object(value, "port record");
  const num = (k: string): number | null => {
    const v = o[k];
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isInteger(v)) throw new KernelError("EBADMSG", `port record: ${k}`);
    return v;
  };
  const addresses = o["addresses"];
  if (!Array.isArray(addresses) || !addresses.every((a) => typeof a === "string")) throw new KernelError("EBADMSG", "port record: addresses");
  const since = o["since"];
  if (typeof since !== "number") throw new KernelError("EBADMSG", "port record: since");
  return {
    port: port(o, "port", "port record"),
    node: str(o, "node", "port record"),
    pid: num("pid"),
    hostPid: num("hostPid"),
    command: str(o, "command", "port record"),
    addresses: addresses as string[],
    since,
  };
}
