import type { NatsConnection } from "@nats-io/transport-node";
import { pack, unpack } from "msgpackr";
import type { MetaChange, MetaStore } from "./meta-store.js";

/** Where every mount announces the inodes and names it just changed (core NATS, no ack). */
export const CHANGES_SUBJECT = "oneos.cloudfs.changes";
/** Changes in one notice at most; a burst (a tar) sends several. */
const MAX_CHANGES_PER_NOTICE = 2048;

interface Notice {
  readonly from: string;
  /** Inodes whose attributes changed. */
  readonly i: number[];
  /** Names removed or pointed at another inode: [parent, encoded name]. */
  readonly n: [number, string][];
}

export interface KernelInvalidator {
  readonly inode: (ino: number) => void;
  readonly entry: (parent: number, encodedName: string) => void;
}

/**
 * Tells the other nodes' kernels what this node changed, as it changes it. With write-back a change
 * reaches JetStream, and so the other nodes' watches, some milliseconds after the call that made it
 * returned; until then their kernels would answer stats and lookups from their caches. A notice goes
 * out in the same turn (one message per turn), the receiver drops those cached attributes and names,
 * and its next stat asks its CloudFS, which catches up with the lease holder (core.ts). A lost notice
 * costs what it cost before write-back: the watch's own invalidation follows.
 */
export function announceChanges(
  nc: NatsConnection,
  meta: MetaStore,
  nodeId: string,
  kernel: KernelInvalidator,
): () => void {
  let inodes = new Set<number>();
  let names: [number, string][] = [];
  let scheduled = false;
  const send = (): void => {
    scheduled = false;
    const all = [...inodes];
    for (let at = 0; at < Math.max(all.length, names.length); at += MAX_CHANGES_PER_NOTICE) {
      const notice: Notice = {
        from: nodeId,
        i: all.slice(at, at + MAX_CHANGES_PER_NOTICE),
        n: names.slice(at, at + MAX_CHANGES_PER_NOTICE),
      };
      try {
        nc.publish(CHANGES_SUBJECT, pack(notice));
      } catch {
        // Connection closed: the watch's invalidations remain.
      }
    }
    inodes = new Set();
    names = [];
  };
  const unlisten = meta.onChange((change: MetaChange) => {
    if (change.fromWatch) return;
    if (change.kind === "inode") inodes.add(change.ino);
    else {
      inodes.add(change.parent);
      if (change.nameMoved) names.push([change.parent, change.name]);
    }
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(send);
    }
  });
  const sub = nc.subscribe(CHANGES_SUBJECT, {
    callback: (err, msg) => {
      if (err !== null) return;
      const notice = parseNotice(msg.data);
      if (notice === undefined || notice.from === nodeId) return;
      for (const ino of notice.i) kernel.inode(ino);
      for (const [parent, name] of notice.n) kernel.entry(parent, name);
    },
  });
  return () => {
    unlisten();
    sub.unsubscribe();
  };
}

/** A notice, if `data` is a well-formed one (anything else on the subject is ignored). */
function parseNotice(data: Uint8Array): Notice | undefined {
  let v: unknown;
  try {
    v = unpack(data);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== "object") return undefined;
  const r = v as Partial<Notice>;
  if (typeof r.from !== "string" || !Array.isArray(r.i) || !Array.isArray(r.n)) return undefined;
  if (!r.i.every((x) => Number.isSafeInteger(x) && x > 0)) return undefined;
  if (!r.n.every((p) => Array.isArray(p) && Number.isSafeInteger(p[0]) && typeof p[1] === "string" && p[1].length <= 400)) {
    return undefined;
  }
  return r as Notice;
}
