import type { KV, KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { FsError } from "./errors.js";
import type { JournalOp } from "./journal-log.js";
import {
  decodeDirEntry,
  decodeDirTimes,
  decodeInode,
  dirTimesKey,
  encodeDirTimes,
  type DirTimesRecord,
  dirEntryKey,
  encodeDirEntry,
  encodeInode,
  INO_COUNTER_KEY,
  inodeKey,
  type DirEntryRecord,
  type InodeRecord,
} from "./records.js";
import { withTimeout } from "./with-timeout.js";
import type { WriteBack } from "./write-back.js";

export interface Versioned<T> {
  readonly value: T;
  readonly rev: number;
}

/** Inode numbers a node reserves per round trip on the shared counter (a tar makes thousands). */
const INO_RANGE = 4096;
/** The next range is reserved in the background once this few numbers are left of the current one. */
const INO_RANGE_REFILL_AT = 1024;
/**
 * Compare-and-set retries before giving up with EIO (each retry re-reads the latest revision, after a
 * random back-off growing with the attempt so a crowd of racers spreads out).
 */
const MAX_CAS_RETRIES = 60;
const CLAIM = new Uint8Array(0);
/** How often a stalled watch is looked for: a change missed by a broken watch shows within two periods. */
const WATCHDOG_PERIOD_MS = 1000;
/** Longest a listing waits for the watch to deliver what the stream already has. */
const FRESHNESS_WAIT_MS = 500;

/**
 * An inode or a directory entry applied to the replica. `fromWatch`: delivered by the watch (another
 * node's change, or this node's seen before its own write returned), not applied by this node itself.
 */
export type MetaChange =
  | { readonly kind: "inode"; readonly ino: number; readonly fromWatch: boolean }
  | {
      readonly kind: "entry";
      readonly parent: number;
      /** The name as encoded in the key (`decodeName` gives its bytes). */
      readonly name: string;
      readonly fromWatch: boolean;
      /** The entry named an inode and now names another one, or nothing. */
      readonly nameMoved: boolean;
    };

/** What the write path needs besides the bucket: the journal, and the lease table told of `l.` keys. */
export interface MetaWritePath {
  readonly writeBack: WriteBack;
  readonly onLeaseRecord: (dir: number, value: Uint8Array | null, rev: number) => void;
  /** Strict mode: every change waits until JetStream has stored it. */
  readonly strict: boolean;
}

/**
 * The node's replica of the metadata bucket. A KV watch keeps every inode and directory entry in
 * memory (lookups, stats and listings never leave the node). A change is made under the lease of the
 * directory that covers it (leases.ts), so this node is its only writer: it is applied here at once
 * and journaled, and the write-back stores it in JetStream behind (`writeKey`). While a key has
 * changes not yet stored, the watch's older values of it are ignored; once stored, revisions order
 * everything: an older revision never overwrites a newer one.
 */
/** A metadata stream message read by sequence: its key, and its value (null for a delete or purge). */
export interface StreamMessage {
  readonly key: string;
  readonly seq: number;
  readonly value: Uint8Array | null;
}

/** Stream messages read at once when filling a gap the watch left. */
const GAP_FILL_PARALLEL = 32;

/**
 * Reads message `seq` of a KV bucket's stream (`$JS.API.STREAM.MSG.GET`); undefined when the stream
 * no longer has it (superseded by a later value of its key, which the watch delivers).
 */
export async function kvMessageAt(nc: NatsConnection, bucket: string, seq: number, timeoutMs: number): Promise<StreamMessage | undefined> {
  const reply = await nc.request(`$JS.API.STREAM.MSG.GET.KV_${bucket}`, JSON.stringify({ seq }), { timeout: timeoutMs });
  const r = JSON.parse(new TextDecoder().decode(reply.data)) as {
    message?: { subject?: string; seq?: number; data?: string; hdrs?: string };
    error?: { code?: number };
  };
  const m = r.message;
  if (m === undefined || typeof m.subject !== "string" || m.seq !== seq) return undefined;
  const prefix = `$KV.${bucket}.`;
  if (!m.subject.startsWith(prefix)) return undefined;
  const hdrs = m.hdrs === undefined ? "" : Buffer.from(m.hdrs, "base64").toString("latin1");
  const removed = /\r\nKV-Operation:\s*(DEL|PURGE)/i.test(hdrs);
  return { key: m.subject.slice(prefix.length), seq, value: removed ? null : new Uint8Array(Buffer.from(m.data ?? "", "base64")) };
}

export class MetaStore {
  readonly #inodes = new Map<number, Versioned<InodeRecord>>();
  readonly #dirTimes = new Map<number, Versioned<DirTimesRecord>>();
  /** Node → when JetStream stamped its liveness record last (`n.<node>`). */
  readonly #beats = new Map<string, number>();
  readonly #dirs = new Map<number, Map<string, Versioned<DirEntryRecord>>>();
  /** Last revision applied per key, deletes included. */
  readonly #revs = new Map<string, number>();
  #inoNext = 0;
  #inoEnd = 0;
  /** A reserved range not yet in use: [first, end). */
  #spare: [number, number] | undefined;
  #watch: AsyncIterable<KvEntry> & { stop(): void } | undefined;
  #watchDone: Promise<void> = Promise.resolve();
  readonly #listeners = new Set<(change: MetaChange) => void>();
  /** Highest stream revision the watch delivered; `#lastCheckedRev` is its value at the last check. */
  #watchRev = 0;
  #lastCheckedRev = -1;
  /** While the replica is loaded again from the stream: the keys the stream delivered so far. */
  #reloaded: Set<string> | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #checking = false;
  #closed = false;
  /** Changes per key journaled and not yet stored. */
  readonly #pending = new Map<string, number>();
  #path: MetaWritePath | undefined;
  #refill: Promise<void> | undefined;

  /** Gap fills in flight (a catch-up waits for them as for the watch itself). */
  readonly #gapFills = new Set<Promise<void>>();

  constructor(
    readonly kv: KV,
    private readonly locks: KV,
    private readonly opTimeoutMs: number,
    /** Reads one message of the metadata stream by sequence (undefined: none there, superseded). */
    private readonly messageAt: (seq: number) => Promise<StreamMessage | undefined> = async () => undefined,
  ) {}

  /**
   * Reads the stream messages `from`..`to` the watch stepped over and applies those still there. When
   * JetStream does not answer in time (a leader election), the watch starts again at `from` instead.
   */
  #fillGap(from: number, to: number): void {
    const fill = (async () => {
      const deadline = Date.now() + this.opTimeoutMs;
      for (let at = from; at <= to; at += GAP_FILL_PARALLEL) {
        const seqs = Array.from({ length: Math.min(GAP_FILL_PARALLEL, to - at + 1) }, (_, i) => at + i);
        const found = await Promise.all(seqs.map((seq) => this.messageAt(seq).catch(() => null)));
        if (found.includes(null) || Date.now() > deadline) {
          if (this.#closed) return;
          this.#watchRev = Math.min(this.#watchRev, from - 1);
          await this.#restartWatch().catch(() => {});
          return;
        }
        for (const m of found) if (m !== undefined && m !== null) this.#apply(m.key, m.seq, m.value, true);
      }
    })();
    this.#gapFills.add(fill);
    void fill.finally(() => this.#gapFills.delete(fill));
  }

  /**
   * Compare-and-set that holds on R3 streams. nats-server 2.9 checks "expected last subject sequence"
   * against stored messages only, so several concurrent updates expecting the same revision can all
   * succeed when the stream is replicated (measured: 59 of 60 rounds of 12 racers had several
   * winners). Creates, in contrast, are exclusive (0 of 60). So an update of `key` from `rev` first
   * creates the claim `<key>.<rev>` in the lock bucket: one racer wins it, the others get a
   * wrong-revision error and retry from the latest record, exactly like a failed CAS.
   */
  async #claim(what: string, key: string, rev: number): Promise<void> {
    await withTimeout(`${what} (claim)`, this.opTimeoutMs, () => this.locks.create(`${key}.${rev}`, CLAIM));
  }

  /** Runs the guarded write; if it fails for another reason than a conflict, frees the claim. */
  async #guarded<T>(what: string, key: string, rev: number, write: () => Promise<T>): Promise<T> {
    await this.#claim(what, key, rev);
    try {
      return await withTimeout(what, this.opTimeoutMs, write);
    } catch (err) {
      if (!isWrongRevision(err)) void this.locks.purge(`${key}.${rev}`).catch(() => {});
      throw err;
    }
  }

  /**
   * Creates `key` only if it has no value: a plain create when the key never existed; when it holds a
   * delete marker, a guarded update from the marker's revision (nats.js's own create() would do that
   * update unguarded).
   */
  async #createKey(what: string, key: string, value: Uint8Array): Promise<number> {
    try {
      return await withTimeout(what, this.opTimeoutMs, () => this.kv.put(key, value, { previousSeq: 0 }));
    } catch (err) {
      if (!isWrongRevision(err)) throw err;
      const e = await withTimeout(what, this.opTimeoutMs, () => this.kv.get(key));
      if (e === null || e.operation === "PUT") throw err;
      return this.#guarded(what, key, e.revision, () => this.kv.update(key, value, e.revision));
    }
  }

  /** Loads the whole bucket and follows it; resolves once the initial state is in. */
  async start(): Promise<void> {
    await this.#startWatch(undefined);
    this.#watchdog = setInterval(() => void this.#checkWatch(), WATCHDOG_PERIOD_MS);
  }

  async #startWatch(resumeFromRevision: number | undefined): Promise<void> {
    const it = await withTimeout("watch metadata", this.opTimeoutMs, () =>
      this.kv.watch(resumeFromRevision === undefined ? {} : { resumeFromRevision }),
    );
    const watch = it as unknown as AsyncIterable<KvEntry> & { stop(): void };
    this.#watch = watch;
    let ready: () => void = () => {};
    const initial = new Promise<void>((r) => (ready = r));
    if (resumeFromRevision !== undefined) ready();
    this.#watchDone = (async () => {
      for await (const e of watch) {
        if (this.#watch !== watch) break;
        // A live consumer of nats-server 2.9 can step over messages that are still the latest of
        // their key (seen here on a git commit's renames): whatever it stepped over is read by
        // sequence, and applied unless it was superseded.
        if (this.#watchRev > 0 && e.revision > this.#watchRev + 1) this.#fillGap(this.#watchRev + 1, e.revision - 1);
        this.#watchRev = Math.max(this.#watchRev, e.revision);
        this.#applyEntry(e);
        if ((e as KvEntry & { isUpdate?: boolean }).isUpdate === true || e.delta === 0) ready();
      }
      ready();
    })();
    await withTimeout("load metadata", this.opTimeoutMs * 4, () => initial);
    if (this.#closed) watch.stop();
  }

  /**
   * Waits until the replica has every change the stream had when this was called (one round trip when
   * it already has, the usual case). Listings call it, so a directory read on one node after a change
   * on another returns shows that change even if the watch lags or broke. Bounded: after
   * `FRESHNESS_WAIT_MS` the watch is restarted and the (possibly stale) replica answers.
   */
  async ensureFresh(): Promise<void> {
    let last: number;
    try {
      const status = await withTimeout("check metadata", this.opTimeoutMs, () => this.kv.status());
      last = status.streamInfo.state.last_seq;
    } catch {
      return; // NATS unreachable: the replica is all there is
    }
    const deadline = Date.now() + FRESHNESS_WAIT_MS;
    while (this.#watchRev < last && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (this.#watchRev < last && !this.#closed) await this.#restartWatch().catch(() => {});
  }

  async #restartWatch(): Promise<void> {
    const old = this.#watch;
    this.#watch = undefined;
    old?.stop();
    await this.#startWatch(this.#watchRev + 1);
  }

  /**
   * The watch is an ordered consumer that lives on one server of the stream; when that server goes,
   * nats.js does not always bring it back. Once per period we compare the stream's last sequence with
   * what the watch delivered: behind and not moving for a whole period means stalled, and the watch is
   * restarted from the next revision (nothing is lost: the stream still has every latest value).
   */
  async #checkWatch(): Promise<void> {
    if (this.#checking || this.#closed) return;
    this.#checking = true;
    try {
      // Delivered before the stream was asked: its leader had all of that when it answered.
      const delivered = this.#watchRev;
      const status = await withTimeout("check watch", this.opTimeoutMs, () => this.kv.status());
      const last = status.streamInfo.state.last_seq;
      if (last < delivered && !this.#closed) await this.#reload(last, delivered);
      else if (last > this.#watchRev && this.#watchRev === this.#lastCheckedRev && !this.#closed) {
        await this.#restartWatch();
      }
      this.#lastCheckedRev = this.#watchRev;
    } catch {
      // NATS unreachable: the next period tries again.
    } finally {
      this.#checking = false;
    }
  }

  /** Called for every inode and entry applied to the replica: the watch's, this node's own writes, fresh reads. */
  onChange(fn: (change: MetaChange) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #applyEntry(e: KvEntry): void {
    // A node's liveness record (leases.ts), renewed each second: when JetStream last stamped it.
    if (e.key.startsWith("n.")) {
      if (e.operation === "PUT") this.#beats.set(e.key.slice(2), e.created.getTime());
      else this.#beats.delete(e.key.slice(2));
    }
    this.#apply(e.key, e.revision, e.operation === "PUT" ? e.value : null, true);
  }

  /** The nodes whose liveness record JetStream stamped within `ms` (as the replica saw it), this one included. */
  nodesBeatingWithin(ms: number): string[] {
    const since = Date.now() - ms;
    return [...this.#beats].filter(([, at]) => at >= since).map(([node]) => node);
  }

  /**
   * Loads the replica again from the whole stream, after the stream went back behind what the watch
   * had delivered. nats-server 2.9.10 does that in about one run in three of the node-loss test: a
   * server is SIGKILLed and started again a minute later, and a few seconds after, the R3 stream
   * elects a leader that lacks the last few hundred messages the stream had acknowledged, and hands
   * their sequences out again. Resuming after `#watchRev` would skip every message that reuses those
   * sequences, and the records of the lost messages would stand in for what the stream holds (a
   * lease taken over from a lost node then failed for good, its compare-and-set expecting a revision
   * the stream no longer had). Keys the stream no longer has go, unless this node has changes of its
   * own to them on the way.
   */
  async #reload(last: number, delivered: number): Promise<void> {
    console.error(
      `cloudfs: the metadata stream went back from revision ${delivered} to ${last} (JetStream lost messages it had acknowledged); loading the replica again`,
    );
    const known = [...this.#revs.keys()];
    const old = this.#watch;
    this.#watch = undefined;
    old?.stop();
    this.#revs.clear();
    this.#watchRev = 0;
    const reloaded = new Set<string>();
    this.#reloaded = reloaded;
    try {
      await this.#startWatch(undefined);
    } finally {
      this.#reloaded = undefined;
    }
    for (const key of known) if (!reloaded.has(key) && !this.#pending.has(key)) this.#set(key, 0, null, true);
  }

  #apply(key: string, rev: number, value: Uint8Array | null, fromWatch = false): void {
    this.#reloaded?.add(key);
    const last = this.#revs.get(key) ?? 0;
    if (rev <= last) return;
    this.#revs.set(key, rev);
    // This node is the key's only writer until its own changes are stored: they are newer.
    if (this.#pending.has(key)) return;
    this.#set(key, rev, value, fromWatch);
  }

  /** Puts a value into the replica and tells the listeners. */
  #set(key: string, rev: number, value: Uint8Array | null, fromWatch: boolean): void {
    let change: MetaChange;
    if (key.startsWith("l.")) {
      this.#path?.onLeaseRecord(Number(key.slice(2)), value, rev);
      return;
    }
    if (key.startsWith("i.")) {
      const ino = Number(key.slice(2));
      if (value === null) this.#inodes.delete(ino);
      else this.#inodes.set(ino, { value: decodeInode(value), rev });
      change = { kind: "inode", ino, fromWatch };
    } else if (key.startsWith("d.")) {
      const dot = key.indexOf(".", 2);
      const parent = Number(key.slice(2, dot));
      const name = key.slice(dot + 1);
      let dir = this.#dirs.get(parent);
      const before = dir?.get(name)?.value.ino;
      let after: number | undefined;
      if (value === null) {
        dir?.delete(name);
      } else {
        if (dir === undefined) this.#dirs.set(parent, (dir = new Map()));
        const entry = decodeDirEntry(value);
        after = entry.ino;
        dir.set(name, { value: entry, rev });
      }
      change = { kind: "entry", parent, name, fromWatch, nameMoved: before !== undefined && before !== after };
    } else if (key.startsWith("t.")) {
      // A directory's times: a change of its attributes.
      const dir = Number(key.slice(2));
      if (value === null) this.#dirTimes.delete(dir);
      else this.#dirTimes.set(dir, { value: decodeDirTimes(value), rev });
      change = { kind: "inode", ino: dir, fromWatch };
    } else {
      return; // the inode counter, liveness records
    }
    for (const l of this.#listeners) l(change);
  }

  /** Connects the write path; until then the replica only reads. */
  attach(path: MetaWritePath): void {
    this.#path = path;
  }

  /**
   * Makes a change under `lease` (which the caller holds): applied here at once, journaled on disk,
   * stored in JetStream behind (in strict mode: before this returns). `blocks` must be stored first;
   * `free` are purged once it is.
   */
  async writeKey(
    key: string,
    value: Uint8Array | null,
    lease: number,
    extra: { readonly blocks?: readonly string[]; readonly free?: readonly string[]; readonly purge?: boolean } = {},
  ): Promise<void> {
    const path = this.#path;
    if (path === undefined) throw new FsError("EROFS", "CloudFS has no write path");
    this.#pending.set(key, (this.#pending.get(key) ?? 0) + 1);
    this.#set(key, this.#revs.get(key) ?? 0, value, false);
    const seq = await path.writeBack.append({ key, value, lease, ...extra });
    if (path.strict) await path.writeBack.stored(seq);
  }

  /** A change a previous run journaled and did not store, applied again before it is resent. */
  applyReplayed(op: JournalOp): void {
    this.#pending.set(op.key, (this.#pending.get(op.key) ?? 0) + 1);
    this.#set(op.key, this.#revs.get(op.key) ?? 0, op.value, false);
  }

  /** The write-back stored a change: once a key has none left, the watch's values count again. */
  onStored(op: JournalOp, rev: number): void {
    const n = (this.#pending.get(op.key) ?? 1) - 1;
    if (n > 0) this.#pending.set(op.key, n);
    else this.#pending.delete(op.key);
    this.#revs.set(op.key, Math.max(this.#revs.get(op.key) ?? 0, rev));
  }

  /** Waits until the watch has delivered the stream up to `rev` (bounded: then the replica answers). */
  async waitWatch(rev: number): Promise<void> {
    const deadline = Date.now() + this.opTimeoutMs;
    while (this.#watchRev < rev && !this.#closed) {
      if (Date.now() > deadline) {
        await this.#restartWatch().catch(() => {});
        return;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(this.#gapFills);
  }

  /** An exclusive create straight to JetStream (a lease); a conflict is a wrong-revision error. */
  async createDirect(key: string, value: Uint8Array): Promise<number> {
    const rev = await this.#createKey("create " + key, key, value);
    this.#apply(key, rev, value);
    return rev;
  }

  /** A compare-and-set straight to JetStream (taking over a lost node's lease). */
  async updateDirect(key: string, value: Uint8Array, rev: number): Promise<number> {
    const newRev = await this.#guarded("update " + key, key, rev, () => this.kv.update(key, value, rev));
    this.#apply(key, newRev, value);
    return newRev;
  }

  /** Reads one key from JetStream into the replica. */
  async fetchKey(key: string): Promise<void> {
    const e = await withTimeout("get " + key, this.opTimeoutMs, () => this.kv.get(key));
    if (e !== null) this.#apply(key, e.revision, e.operation === "PUT" ? e.value : null);
  }

  inode(ino: number): Versioned<InodeRecord> | undefined {
    return this.#inodes.get(ino);
  }

  /** The inode as JetStream has it now (one round trip): used on open for close-to-open consistency. */
  async fetchInode(ino: number): Promise<Versioned<InodeRecord> | undefined> {
    await this.fetchKey(inodeKey(ino));
    return this.#inodes.get(ino);
  }

  entry(parent: number, encodedName: string): Versioned<DirEntryRecord> | undefined {
    return this.#dirs.get(parent)?.get(encodedName);
  }

  /** Looks a name up in JetStream itself, for a miss that may only be the watch lagging. */
  async fetchEntry(parent: number, encodedName: string): Promise<Versioned<DirEntryRecord> | undefined> {
    await this.fetchKey(dirEntryKey(parent, encodedName));
    return this.entry(parent, encodedName);
  }

  entries(parent: number): ReadonlyMap<string, Versioned<DirEntryRecord>> {
    return this.#dirs.get(parent) ?? new Map();
  }

  /** Number of subdirectories, for a directory's link count. */
  subdirCount(parent: number): number {
    let n = 0;
    for (const e of this.entries(parent).values()) if (e.value.type === "dir") n++;
    return n;
  }

  inodeCount(): number {
    return this.#inodes.size;
  }

  allInodes(): IterableIterator<[number, Versioned<InodeRecord>]> {
    return this.#inodes.entries();
  }

  /** A fresh inode number from this node's range; the next range is reserved before this one ends. */
  async allocateIno(): Promise<number> {
    for (;;) {
      if (this.#inoNext >= this.#inoEnd && this.#spare !== undefined) {
        [this.#inoNext, this.#inoEnd] = this.#spare;
        this.#spare = undefined;
      }
      const left = this.#inoEnd - this.#inoNext;
      if (left <= INO_RANGE_REFILL_AT && this.#spare === undefined) {
        this.#refill ??= this.#reserveRange().finally(() => (this.#refill = undefined));
      }
      if (left > 0) break;
      await this.#refill;
    }
    if (this.#inoEnd > 0xffff_ffff) throw new FsError("ENOSPC", "inode numbers exhausted");
    return this.#inoNext++;
  }

  async #reserveRange(): Promise<void> {
    for (let i = 0; ; i++) {
      const e = await withTimeout("get inode counter", this.opTimeoutMs, () => this.kv.get(INO_COUNTER_KEY));
      if (e === null) throw new FsError("EIO", "inode counter missing");
      const next = Number(new TextDecoder().decode(e.value));
      try {
        await this.#guarded("reserve inodes", INO_COUNTER_KEY, e.revision, () =>
          this.kv.update(INO_COUNTER_KEY, new TextEncoder().encode(String(next + INO_RANGE)), e.revision),
        );
        this.#spare = [next, next + INO_RANGE];
        return;
      } catch (err) {
        if (!isWrongRevision(err) || i >= MAX_CAS_RETRIES) throw err;
      }
    }
  }

  /** Writes an inode record under `lease`. */
  putInode(ino: number, rec: InodeRecord, lease: number, extra: { blocks?: readonly string[]; free?: readonly string[] } = {}): Promise<void> {
    return this.writeKey(inodeKey(ino), encodeInode(rec), lease, extra);
  }

  /** Deletes an inode record under `lease`; `free` (its blocks) are purged once that is stored. */
  deleteInode(ino: number, lease: number, free: readonly string[] = []): Promise<void> {
    return this.writeKey(inodeKey(ino), null, lease, { purge: true, free });
  }

  /** A directory's own mtime and ctime (`t.<dir>`), if an entry was ever made or removed in it. */
  dirTimes(dir: number): DirTimesRecord | undefined {
    return this.#dirTimes.get(dir)?.value;
  }

  /** Sets a directory's times, under the directory's own lease. */
  putDirTimes(dir: number, t: DirTimesRecord): Promise<void> {
    return this.writeKey(dirTimesKey(dir), encodeDirTimes(t), dir);
  }

  putEntry(parent: number, encodedName: string, e: DirEntryRecord): Promise<void> {
    return this.writeKey(dirEntryKey(parent, encodedName), encodeDirEntry(e), parent);
  }

  deleteEntry(parent: number, encodedName: string): Promise<void> {
    return this.writeKey(dirEntryKey(parent, encodedName), null, parent);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#watchdog);
    this.#watch?.stop();
    await this.#watchDone.catch(() => {});
    this.#listeners.clear();
  }
}

export function cloneInode(rec: InodeRecord): InodeRecord {
  return { ...rec, blocks: { ...rec.blocks } };
}

/** A JetStream "wrong last sequence" answer: someone changed the key since we read it. */
export function isWrongRevision(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: number }; message?: string } | null;
  if (e === null || typeof e !== "object") return false;
  if (e.api_error?.err_code === 10071) return true;
  return typeof e.message === "string" && /wrong last sequence/i.test(e.message);
}
