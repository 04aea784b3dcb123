import type { NatsConnection } from "@nats-io/transport-node";
import { pack, unpack } from "msgpackr";
import type { MetaChange, MetaStore } from "./meta-store.js";

/** Where a mount announces, to whoever listens, the inodes and names it just changed (no ack). */
export const CHANGES_SUBJECT = "oneos.cloudfs.changes";
/** Where a mount is told, and answers once it has told its kernel, what another node changed. */
export const invalidateSubject = (node: string): string => `oneos.cloudfs.${node}.invalidate`;
/** Changes in one notice at most; a burst (a tar) sends several. */
const MAX_CHANGES_PER_NOTICE = 2048;
/** Longest a change waits for a node to confirm it dropped its cached copy (a lost node is skipped). */
const CONFIRM_TIMEOUT_MS = 200;

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
  /** Told first, of every notice: what this node caught up with may be stale now. */
  readonly noticed?: () => void;
}

/** Which other nodes' kernels may hold what a change touched. */
export interface CacheHolders {
  /** Nodes that asked this node, the lease holder, about the directory lately: told, and waited for. */
  readonly nodes: readonly string[];
  /** Whether nodes this node does not know of may too (it took the lease from nobody lately): told only. */
  readonly anyone: boolean;
}

export interface ChangeAnnouncer {
  /** Resolves once every node that may cache what was changed so far has dropped it (bounded). */
  settled(): Promise<void>;
  close(): void;
}

/**
 * Tells the other nodes' kernels what this node changed, before the system call that changed it
 * returns, as an NFSv4 server recalls a delegation or CephFS revokes a capability before a
 * conflicting change. With write-back a change reaches JetStream, and so the other nodes' watches,
 * some milliseconds after the call returned; until then their kernels would answer stats and lookups
 * (make's, git's) from their caches. The lease holder knows who may have cached a directory: only a
 * node that asked it (every lookup, stat, listing or open of a name there does, on a node without the
 * lease), or whoever asked the holder before it. Those nodes get the notice as a request and answer
 * once their kernel has been told; the change's system call waits for the answers
 * (`CONFIRM_TIMEOUT_MS` at most: a node that does not answer is lost or gone). A directory nobody
 * else looked into costs nothing: a tree one node builds alone sends no notice. The watch's own
 * invalidation follows in every case.
 */
export function announceChanges(
  nc: NatsConnection,
  meta: MetaStore,
  nodeId: string,
  kernel: KernelInvalidator,
  holdersOf: (change: MetaChange) => CacheHolders,
): ChangeAnnouncer {
  let inodes = new Set<number>();
  let names: [number, string][] = [];
  let targets = new Set<string>();
  let broadcast = false;
  let scheduled = false;
  const inFlight = new Set<Promise<unknown>>();
  const send = (): void => {
    if (!scheduled) return;
    scheduled = false;
    const all = [...inodes];
    const sentNames = names;
    const to = [...targets];
    const everyone = broadcast;
    inodes = new Set();
    names = [];
    targets = new Set();
    broadcast = false;
    for (let at = 0; at < Math.max(all.length, sentNames.length); at += MAX_CHANGES_PER_NOTICE) {
      const notice = pack({
        from: nodeId,
        i: all.slice(at, at + MAX_CHANGES_PER_NOTICE),
        n: sentNames.slice(at, at + MAX_CHANGES_PER_NOTICE),
      } satisfies Notice);
      try {
        if (everyone) nc.publish(CHANGES_SUBJECT, notice);
        for (const node of to) {
          const p = nc.request(invalidateSubject(node), notice, { timeout: CONFIRM_TIMEOUT_MS }).catch(() => {});
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
      } catch {
        // Connection closed: the watch's invalidations remain.
      }
    }
  };
  const unlisten = meta.onChange((change: MetaChange) => {
    if (change.fromWatch) return;
    const holders = holdersOf(change);
    if (holders.nodes.length === 0 && !holders.anyone) return;
    for (const node of holders.nodes) targets.add(node);
    broadcast ||= holders.anyone;
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
  const apply = (data: Uint8Array): boolean => {
    const notice = parseNotice(data);
    if (notice === undefined || notice.from === nodeId) return false;
    kernel.noticed?.();
    for (const ino of notice.i) kernel.inode(ino);
    for (const [parent, name] of notice.n) kernel.entry(parent, name);
    return true;
  };
  const subs = [
    nc.subscribe(CHANGES_SUBJECT, {
      callback: (err, msg) => {
        if (err === null) apply(msg.data);
      },
    }),
    nc.subscribe(invalidateSubject(nodeId), {
      callback: (err, msg) => {
        if (err === null && apply(msg.data)) msg.respond();
      },
    }),
  ];
  return {
    async settled() {
      send();
      while (inFlight.size > 0) await Promise.all(inFlight);
    },
    close() {
      unlisten();
      send();
      for (const s of subs) s.unsubscribe();
    },
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
