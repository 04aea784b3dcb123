import { TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { pack, unpack } from "msgpackr";
import { FsError } from "./errors.js";
import { CACHED_FUSE_TUNING } from "./fuse-options.js";
import { isWrongRevision } from "./meta-store.js";
import type { MetaStore } from "./meta-store.js";
import { heartbeatKey, leaseKey } from "./records.js";
import { withTimeout } from "./with-timeout.js";
import type { WriteBack } from "./write-back.js";

/**
 * A holder whose liveness record JetStream has not had renewed for this long is lost: another node
 * may take its leases over. The holder itself stops trusting its leases `TRUST_MARGIN_MS` earlier
 * (counted from when it sent its last acknowledged renewal, which is before JetStream stamped it), so
 * the two never both act on one directory while the nodes' clocks agree within that margin.
 */
export const LEASE_TTL_MS = 6_000;
const TRUST_MARGIN_MS = 1_500;
/** A recall of a holder that is alive but slow is repeated for this many op timeouts. */
const BUSY_HOLDER_WAIT_FACTOR = 2;
/** How often a node renews its liveness record (`n.<node>`). */
const HEARTBEAT_MS = 1_000;
/** Renewals in flight at once: a slow JetStream gets a fresh one each second, not one stuck behind another. */
const MAX_BEATS_IN_FLIGHT = 4;

/**
 * How long after another node last asked about a directory its kernel may still hold names and
 * attributes from it: the kernel's cache timeouts (fuse-options.ts, 10 s) and a margin.
 */
const OBSERVED_MS = (Math.max(CACHED_FUSE_TUNING.entryTimeoutSec, CACHED_FUSE_TUNING.attrTimeoutSec) + 5) * 1000;

/**
 * How long a catch-up with a directory's holder stands (a read delegation, as NFSv4's): the holder
 * tells this node of every later change there before the change returns (change-notices.ts), for
 * `OBSERVED_MS` after this node last asked, and a notice from it ends the delegation at once. Well
 * inside that, and inside the time a lost holder's lease outlives its last answer (the TTL less a
 * renewal period), the replica is as current as another ask would make it.
 */
const CAUGHT_UP_MS = 3_000;
/** Standing catch-ups beyond which the expired ones are swept (each set past this scans the table). */
const CAUGHT_UP_PRUNE_AT = 1_024;

/** What a lease record (`l.<dir>`) holds. */
interface LeaseRecord {
  readonly node: string;
}

export const recallSubject = (node: string): string => `oneos.cloudfs.${node}.recall`;
export const statusSubject = (node: string): string => `oneos.cloudfs.${node}.status`;

/**
 * A recall request, as it travels (JSON). `from`: the asking node, when it has a kernel that caches
 * what it reads (a mount): the holder then tells it of every later change there before the change's
 * system call returns (change-notices.ts).
 */
export type RecallRequest = { readonly type: "release" | "flush"; readonly dir: number; readonly from?: string };
/** A recall's answer: the stream revision to wait for, and on release who may cache the directory. */
export type RecallAnswer = {
  readonly rev: number;
  readonly observers?: readonly string[];
  /** The holder tells the nodes that ask it of its later changes (it has a mount that announces them). */
  readonly notifies?: boolean;
};

/**
 * Directory leases: the node holding a directory's lease answers lookups there from its own state
 * (negative ones too) and changes it without waiting for JetStream (its changes go through the
 * write-back journal, in order). A lease is a metadata key `l.<dir>` taken with an exclusive create,
 * handed over on request (the holder stores what it did under the lease, then deletes the key through
 * the same journal, so the next holder sees all of it), and taken over by compare-and-set once its
 * holder's liveness record is older than `LEASE_TTL_MS`. The inode of a file is covered by the lease
 * of the directory it was created in (`home`); see core.ts.
 */
export class DirectoryLeases {
  readonly #holders = new Map<number, { node: string; rev: number }>();
  readonly #pins = new Map<number, number>();
  readonly #unpinWaiters = new Map<number, (() => void)[]>();
  readonly #releasing = new Map<number, Promise<void>>();
  /** When the last acknowledged liveness renewal was sent. */
  #beatAt = 0;
  #beatsInFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Catch-up requests out per directory, and the one that callers arriving meanwhile wait for. */
  readonly #catchUpOut = new Map<number, Promise<boolean>>();
  readonly #catchUpNext = new Map<number, Promise<boolean>>();
  /**
   * Per directory, the nodes whose kernels may cache names and attributes from it, and when each
   * last asked this node about it; and when this node took a lease from nobody (then anyone may).
   */
  readonly #observers = new Map<number, Map<string, number>>();
  readonly #observedAt = new Map<number, number>();
  /** Directories caught up with their holder, which will tell this node of changes until `until`. */
  readonly #caughtUp = new Map<number, { readonly node: string; readonly until: number }>();
  /** Change notices received so far (a catch-up that overlaps one does not stand). */
  #notices = 0;

  /**
   * Set by a mount: this node's kernel caches what it reads, so holders must tell it of changes (and
   * because they do, its catch-ups stand for `CAUGHT_UP_MS`).
   */
  cachesInKernel = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly meta: MetaStore,
    private readonly writeBack: WriteBack,
    readonly nodeId: string,
    private readonly opTimeoutMs: number,
    /** This run of the node's CloudFS (its liveness record names it: locks of an earlier run are void). */
    readonly session: string = "",
  ) {}

  /** Renews liveness now and every `HEARTBEAT_MS`. */
  async start(): Promise<void> {
    // While this node was down, others read what JetStream had of its directories.
    for (const dir of this.ownedDirs()) this.#observedAt.set(dir, Date.now());
    await this.#beat();
    this.#timer = setInterval(() => void this.#beat().catch(() => {}), HEARTBEAT_MS);
  }

  /** One renewal of the liveness record; several may be in flight, and the newest acknowledged counts. */
  async #beat(): Promise<void> {
    if (this.#beatsInFlight >= MAX_BEATS_IN_FLIGHT) return;
    this.#beatsInFlight++;
    const sent = Date.now();
    try {
      await withTimeout("renew liveness", this.opTimeoutMs, () => this.kv.put(heartbeatKey(this.nodeId), pack({ t: sent, s: this.session })));
      this.#beatAt = Math.max(this.#beatAt, sent);
    } finally {
      this.#beatsInFlight--;
    }
  }

  /** Told by the metadata replica of every lease record it applies (`node` undefined: released). */
  onLeaseRecord(dir: number, value: Uint8Array | null, rev: number): void {
    if (value === null) return void this.#holders.delete(dir);
    const rec = unpack(value) as Partial<LeaseRecord> | null;
    if (rec === null || typeof rec !== "object" || typeof rec.node !== "string") return;
    this.#holders.set(dir, { node: rec.node, rev });
  }

  static encode(node: string): Uint8Array {
    return pack({ node } satisfies LeaseRecord);
  }

  /** This node may act on `dir` without asking anyone. */
  heldBySelf(dir: number): boolean {
    return (
      this.#holders.get(dir)?.node === this.nodeId &&
      !this.#releasing.has(dir) &&
      Date.now() - this.#beatAt < LEASE_TTL_MS - TRUST_MARGIN_MS
    );
  }

  /** This node holds `dir`'s lease, perhaps gone stale (for answering lookups: nobody else can have it yet). */
  heldOrStale(dir: number): boolean {
    return this.#holders.get(dir)?.node === this.nodeId && !this.#releasing.has(dir);
  }

  /** Another node that holds `dir`'s lease, as far as this replica knows. */
  otherHolder(dir: number): string | undefined {
    const h = this.#holders.get(dir)?.node;
    return h === undefined || h === this.nodeId ? undefined : h;
  }

  /** Leases this node holds, for `oneos df`. */
  heldCount(): number {
    return this.ownedDirs().length;
  }

  /** The directories whose leases this node holds. */
  ownedDirs(): number[] {
    const out: number[] = [];
    for (const [dir, h] of this.#holders) if (h.node === this.nodeId) out.push(dir);
    return out;
  }

  /** Whether anyone may cache from `dir` (this node took its lease from nobody, lately, or holds none). */
  observedByAnyone(dir: number): boolean {
    const at = this.#observedAt.get(dir);
    if (at === undefined) return !this.heldOrStale(dir);
    if (Date.now() - at < OBSERVED_MS) return true;
    this.#observedAt.delete(dir);
    return false;
  }

  /**
   * A change notice came: no catch-up stands any longer. All of them go, not only those with its
   * sender: a lease that moved on may be changed by its new holder before this replica knows of it.
   */
  noticed(): void {
    this.#notices++;
    this.#caughtUp.clear();
  }

  /** The nodes known to have asked about `dir` within `OBSERVED_MS`. */
  observersOf(dir: number): string[] {
    const seen = this.#observers.get(dir);
    if (seen === undefined) return [];
    const now = Date.now();
    for (const [node, at] of seen) if (now - at >= OBSERVED_MS) seen.delete(node);
    if (seen.size === 0) this.#observers.delete(dir);
    return [...seen.keys()];
  }

  #observe(dir: number, nodes: readonly string[]): void {
    const now = Date.now();
    let seen = this.#observers.get(dir);
    for (const node of nodes) {
      if (node === this.nodeId) continue;
      if (seen === undefined) this.#observers.set(dir, (seen = new Map()));
      seen.set(node, now);
    }
  }

  /** Records a lease this node took by making the directory (its record goes out through the journal). */
  adoptNew(dir: number): void {
    this.#holders.set(dir, { node: this.nodeId, rev: 0 });
  }

  /**
   * Runs `fn` holding the leases of `dirs`: they are all taken first, then pinned together (a recall
   * waits for a pinned lease, never the other way round, so two nodes wanting each other's leases
   * cannot deadlock: neither pins before it has both).
   */
  async withLeases<T>(dirs: readonly number[], fn: () => Promise<T>): Promise<T> {
    const wanted = dirs.length === 1 ? [dirs[0]!] : [...new Set(dirs)].sort((a, b) => a - b);
    // Held already (nearly always): no await before the change is made.
    if (!wanted.every((d) => this.heldBySelf(d))) await this.#acquireAll(wanted);
    for (const d of wanted) this.#pins.set(d, (this.#pins.get(d) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      for (const d of wanted) {
        const n = (this.#pins.get(d) ?? 1) - 1;
        if (n > 0) this.#pins.set(d, n);
        else {
          this.#pins.delete(d);
          for (const w of this.#unpinWaiters.get(d)?.splice(0) ?? []) w();
        }
      }
    }
  }

  async #acquireAll(wanted: readonly number[]): Promise<void> {
    // A live holder may first have to store a backlog before it lets go.
    const deadline = Date.now() + BUSY_HOLDER_WAIT_FACTOR * this.opTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      for (const d of wanted) await this.#acquire(d, deadline);
      if (wanted.every((d) => this.heldBySelf(d))) return;
      if (Date.now() > deadline) throw new FsError("EIO", `leases on directories ${wanted.join(",")} not obtained`);
      await sleep(Math.random() * Math.min(50, 2 * attempt));
    }
  }

  async #acquire(dir: number, deadline: number): Promise<void> {
    const key = leaseKey(dir);
    for (;;) {
      await this.#releasing.get(dir)?.catch(() => {});
      if (this.heldBySelf(dir)) return;
      const cur = this.#holders.get(dir);
      try {
        if (cur?.node === this.nodeId) {
          // Our own lease, gone stale: JetStream must hear from us again before the deadline (a slow
          // JetStream delays the op; one that does not answer fails it with EIO).
          await this.#beat().catch(() => {});
          if (this.heldBySelf(dir)) return;
          if (Date.now() > deadline) throw new FsError("EIO", `lease on directory ${dir}: cannot renew this node's liveness in JetStream`);
          await sleep(20);
          continue;
        } else if (cur !== undefined) {
          if (await this.#isLost(cur.node)) {
            const rev = await this.meta.updateDirect(key, DirectoryLeases.encode(this.nodeId), cur.rev);
            this.#observedAt.set(dir, Date.now());
            await this.meta.waitWatch(rev);
            continue;
          }
          // The last holder, and whoever asked it, may cache the directory.
          const answer = await this.#recall(cur.node, { type: "release", dir });
          this.#observe(dir, [cur.node, ...(answer.observers ?? [])]);
          await this.meta.fetchKey(key);
        } else {
          const rev = await this.meta.createDirect(key, DirectoryLeases.encode(this.nodeId));
          this.#observedAt.set(dir, Date.now());
          // Everything the previous holder stored comes before our record: wait to have it all.
          await this.meta.waitWatch(rev);
          continue;
        }
      } catch (err) {
        if (err instanceof FsError && /cannot renew/.test(err.message)) throw err;
        if (!isWrongRevision(err) && !(err instanceof FsError && err.code === "EEXIST")) {
          if (Date.now() > deadline) throw err;
          await sleep(50);
        }
        await this.meta.fetchKey(key).catch(() => {});
      }
      if (Date.now() > deadline) throw new FsError("EIO", `lease on directory ${dir} not obtained`);
    }
  }

  /**
   * Whether `node` runs the CloudFS session `session` now: its liveness record names it and is younger
   * than the lease TTL (a lock taken by a lost node, or before its daemon restarted, holds no more).
   */
  async runs(node: string, session: string): Promise<boolean> {
    if (node === this.nodeId) return session === this.session;
    const live = await this.#liveness(node);
    if (live === undefined) return false;
    try {
      return (unpack(live) as { s?: unknown }).s === session;
    } catch {
      return false;
    }
  }

  /** Whether `node`'s liveness record is older than the lease TTL (JetStream's own timestamp). */
  async #isLost(node: string): Promise<boolean> {
    return (await this.#liveness(node)) === undefined;
  }

  /** `node`'s liveness record if JetStream stamped it within the lease TTL; undefined: lost. */
  async #liveness(node: string): Promise<Uint8Array | undefined> {
    const e = await withTimeout("read liveness", this.opTimeoutMs, () => this.kv.get(heartbeatKey(node)));
    if (e === null || e.operation !== "PUT" || Date.now() - e.created.getTime() > LEASE_TTL_MS) return undefined;
    return e.value;
  }

  /** Asks `node` to release or flush a lease; resolves with the stream revision to wait for. */
  async #recall(node: string, req: RecallRequest): Promise<RecallAnswer> {
    const full: RecallRequest = this.cachesInKernel ? { ...req, from: this.nodeId } : req;
    const reply = await this.nc.request(recallSubject(node), JSON.stringify(full), { timeout: this.opTimeoutMs });
    const r = JSON.parse(new TextDecoder().decode(reply.data)) as { ok?: boolean; rev?: number; observers?: unknown; notifies?: unknown; error?: string };
    if (r.ok !== true || typeof r.rev !== "number") throw new FsError("EIO", `recall from ${node}: ${r.error ?? "refused"}`);
    const observers = Array.isArray(r.observers) ? r.observers.filter((o): o is string => typeof o === "string" && isNodeName(o)) : [];
    return { rev: r.rev, observers, notifies: r.notifies === true };
  }

  /**
   * Makes this replica show everything another node did in `dir` (close-to-open for names and files
   * it holds dirty). A holder that does not answer is lost or restarting: what JetStream has is all
   * anyone has, and the caller reads that. Callers that come while a request is out share the next
   * one (not the one out: it may have left before their cause happened), so a burst of stats costs
   * two round trips, not one each.
   */
  catchUp(dir: number): Promise<boolean> {
    const holder = this.otherHolder(dir);
    if (holder === undefined) return Promise.resolve(false);
    const standing = this.#caughtUp.get(dir);
    if (standing !== undefined && standing.node === holder && standing.until > Date.now()) return Promise.resolve(true);
    const queued = this.#catchUpNext.get(dir);
    if (queued !== undefined) return queued;
    const ask = async (): Promise<boolean> => {
      this.#catchUpNext.delete(dir);
      const deadline = Date.now() + BUSY_HOLDER_WAIT_FACTOR * this.opTimeoutMs;
      for (;;) {
        const asked = Date.now();
        const notices = this.#notices;
        try {
          const answer = await this.#recall(holder, { type: "flush", dir });
          await this.meta.waitWatch(answer.rev);
          // The holder now tells this node of changes there (this node named itself in the recall),
          // if it tells anyone: a holder without a mount (the desktop's) does not.
          if (this.cachesInKernel && answer.notifies === true && this.#notices === notices) this.#standFor(dir, holder, asked);
          return true;
        } catch (err) {
          // A holder that is there but slow is storing a backlog (its JetStream was away): ask again
          // while it still holds the lease, rather than read what JetStream has so far.
          if (!(err instanceof TimeoutError) || Date.now() > deadline || this.otherHolder(dir) !== holder) return false;
        }
      }
    };
    const out = this.#catchUpOut.get(dir);
    const p = (out === undefined ? ask() : out.then(ask)).finally(() => {
      if (this.#catchUpOut.get(dir) === p) this.#catchUpOut.delete(dir);
    });
    if (out !== undefined) this.#catchUpNext.set(dir, p);
    this.#catchUpOut.set(dir, p);
    return p;
  }

  /**
   * Records a catch-up that stands until `asked + CAUGHT_UP_MS`. Those long past are dropped as the
   * table grows, so it holds only the directories caught up with lately (a `find` walks thousands).
   */
  #standFor(dir: number, node: string, asked: number): void {
    if (this.#caughtUp.size >= CAUGHT_UP_PRUNE_AT) {
      const now = Date.now();
      for (const [d, c] of this.#caughtUp) if (c.until <= now) this.#caughtUp.delete(d);
    }
    this.#caughtUp.set(dir, { node, until: asked + CAUGHT_UP_MS });
  }

  /** Serves a recall: stores what this node did under the lease, and for "release" lets go of it. */
  async serveRecall(req: RecallRequest): Promise<RecallAnswer> {
    if (req.from !== undefined) this.#observe(req.dir, [req.from]);
    if (req.type === "flush" || this.#holders.get(req.dir)?.node !== this.nodeId) {
      return { rev: await this.writeBack.flushLease(req.dir), notifies: this.cachesInKernel };
    }
    let p = this.#releasing.get(req.dir);
    if (p === undefined) {
      p = (async () => {
        while ((this.#pins.get(req.dir) ?? 0) > 0) {
          await new Promise<void>((r) => {
            const list = this.#unpinWaiters.get(req.dir) ?? [];
            list.push(r);
            this.#unpinWaiters.set(req.dir, list);
          });
        }
        await this.meta.writeKey(leaseKey(req.dir), null, req.dir);
        await this.writeBack.flushLease(req.dir);
      })().finally(() => this.#releasing.delete(req.dir));
      this.#releasing.set(req.dir, p);
    }
    await p;
    const observers = this.observersOf(req.dir);
    this.#observers.delete(req.dir);
    return { rev: await this.writeBack.flushLease(req.dir), observers };
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A node name as it may appear in a subject token. */
export function isNodeName(s: string): boolean {
  return s.length > 0 && s.length <= 128 && /^[A-Za-z0-9_-]+$/.test(s);
}
