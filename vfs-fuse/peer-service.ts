import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { BLOCK_ID } from "./block-store.js";
import { isNodeName, recallSubject, statusSubject, type RecallAnswer, type RecallRequest } from "./leases.js";
import type { WriteBackStatus } from "./write-back.js";

/** What `oneos.cloudfs.<node>.status` answers (JSON). */
export interface CloudFsNodeStatus extends WriteBackStatus {
  readonly node: string;
  readonly leases: number;
  readonly strict: boolean;
}

export interface PeerHandlers {
  readonly recall: (req: RecallRequest) => Promise<RecallAnswer>;
  readonly status: () => CloudFsNodeStatus;
  /** A block this node holds in its caches, for a peer's read; undefined when it has none. */
  readonly block: (id: string) => Promise<Uint8Array | undefined>;
  /** Which of these inodes a process of this node has open (orphans.ts). */
  readonly opened: (inodes: readonly number[]) => number[];
  /** Processes of another node read these files (atime.ts). */
  readonly accessed: (inodes: readonly number[]) => void;
}

/** Where a node says which of the given inodes it has open: `{"inodes":[…]}` → `{"open":[…]}`. */
export const openedSubject = (node: string): string => `oneos.cloudfs.${node}.opened`;
/** Where a node hears which files of the directories it holds other nodes read (atime.ts): `{"inodes":[…]}`. */
export const accessedSubject = (node: string): string => `oneos.cloudfs.${node}.accessed`;
/** Inodes in one `opened` question or `accessed` message at most. */
export const MAX_OPENED_QUESTION = 4096;

/** The inode list of an `opened` question or an `accessed` message, or undefined when it is malformed. */
export function parseInodeList(data: Uint8Array): number[] | undefined {
  try {
    const inodes = (JSON.parse(new TextDecoder().decode(data)) as { inodes?: unknown } | null)?.inodes;
    if (!Array.isArray(inodes) || inodes.length > MAX_OPENED_QUESTION) return undefined;
    return inodes.every((i) => Number.isSafeInteger(i) && (i as number) > 0) ? (inodes as number[]) : undefined;
  } catch {
    return undefined;
  }
}

/** Where a node serves the blocks its caches hold: the request is the block id, the answer its bytes (empty: none). */
export const blockSubject = (node: string): string => `oneos.cloudfs.${node}.block`;

/**
 * Asks `node` for a block from its caches: its bytes, or undefined when it has none, is gone, or is
 * slower than `timeoutMs` (the caller then reads JetStream).
 */
export async function peerBlock(nc: NatsConnection, node: string, id: string, timeoutMs: number): Promise<Buffer | undefined> {
  try {
    const reply = await nc.request(blockSubject(node), id, { timeout: timeoutMs });
    return reply.data.length === 0 ? undefined : Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.length);
  } catch {
    return undefined;
  }
}

/**
 * The node's CloudFS subjects for its peers: recalls of the leases it holds (`…recall`: store what
 * was done in a directory, and for "release" let go of it), its write-back state (`…status`, for
 * `oneos df` and the metrics), the blocks its caches hold (`…block`) and which unlinked files it
 * still has open (`…opened`); and it hears which files of its directories other nodes read
 * (`…accessed`). Requests are validated here; anything malformed is answered with an error (or, with
 * no answer wanted, dropped), never acted on.
 */
export function servePeerRequests(nc: NatsConnection, nodeId: string, handlers: PeerHandlers): () => void {
  const subs: Subscription[] = [
    nc.subscribe(recallSubject(nodeId), {
      callback: (err, msg) => {
        if (err !== null) return;
        const req = parseRecall(msg.data);
        if (req === undefined) return void msg.respond(JSON.stringify({ ok: false, error: "EBADMSG: malformed recall" }));
        handlers.recall(req).then(
          (answer) => msg.respond(JSON.stringify({ ok: true, ...answer })),
          (e: unknown) => msg.respond(JSON.stringify({ ok: false, error: (e as Error).message ?? String(e) })),
        );
      },
    }),
    nc.subscribe(statusSubject(nodeId), {
      callback: (err, msg) => {
        if (err === null) msg.respond(JSON.stringify(handlers.status()));
      },
    }),
    nc.subscribe(openedSubject(nodeId), {
      callback: (err, msg) => {
        if (err !== null) return;
        const inodes = parseInodeList(msg.data);
        if (inodes === undefined) return void msg.respond(JSON.stringify({ ok: false, error: "EBADMSG: malformed question" }));
        msg.respond(JSON.stringify({ ok: true, open: handlers.opened(inodes) }));
      },
    }),
    // No answer: the reader does not wait (atime is best effort); a malformed message is dropped.
    nc.subscribe(accessedSubject(nodeId), {
      callback: (err, msg) => {
        if (err !== null) return;
        const inodes = parseInodeList(msg.data);
        if (inodes !== undefined) handlers.accessed(inodes);
      },
    }),
    nc.subscribe(blockSubject(nodeId), {
      callback: (err, msg) => {
        if (err !== null) return;
        const id = msg.data.length <= 64 ? new TextDecoder().decode(msg.data) : "";
        if (!BLOCK_ID.test(id)) return void msg.respond(new Uint8Array(0));
        const answer = (data: Uint8Array): void => {
          try {
            msg.respond(data);
          } catch {
            // Connection closed: the asker reads JetStream after its timeout.
          }
        };
        handlers.block(id).then(
          (data) => answer(data ?? new Uint8Array(0)),
          () => answer(new Uint8Array(0)),
        );
      },
    }),
  ];
  return () => {
    for (const s of subs) s.unsubscribe();
  };
}

/** A recall request, if `data` is one: `{"type":"release"|"flush","dir":<inode number>[,"from":<node>]}`. */
export function parseRecall(data: Uint8Array): RecallRequest | undefined {
  if (data.length > 256) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== "object") return undefined;
  const r = v as { type?: unknown; dir?: unknown; from?: unknown };
  if (r.type !== "release" && r.type !== "flush") return undefined;
  if (typeof r.dir !== "number" || !Number.isSafeInteger(r.dir) || r.dir < 1) return undefined;
  if (r.from !== undefined && (typeof r.from !== "string" || !isNodeName(r.from))) return undefined;
  return { type: r.type, dir: r.dir, ...(r.from !== undefined ? { from: r.from } : {}) };
}
