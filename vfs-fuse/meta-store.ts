import type { KV, KvEntry } from "@nats-io/kv";
import { FsError } from "./errors.js";
import {
  decodeDirEntry,
  decodeInode,
  dirEntryKey,
  encodeDirEntry,
  encodeInode,
  INO_COUNTER_KEY,
  inodeKey,
  type DirEntryRecord,
  type InodeRecord,
} from "./records.js";
import { withTimeout } from "./with-timeout.js";

export interface Versioned<T> {
  readonly value: T;
  readonly rev: number;
}

/** Inode numbers a node reserves per round trip on the shared counter. */
const INO_RANGE = 256;
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

/**
 * The node's replica of the metadata bucket. A KV watch keeps every inode and directory entry in
 * memory (lookups, stats and listings never leave the node), and every change goes to JetStream as a
 * compare-and-set on the key's revision, so concurrent changes from different nodes never lose an
 * update. What the node writes is applied locally at once (read-your-writes); the watch applies the
 * others' changes within milliseconds. Revisions order both paths: an older revision never overwrites
 * a newer one.
 */
export class MetaStore {
  readonly #inodes = new Map<number, Versioned<InodeRecord>>();
  readonly #dirs = new Map<number, Map<string, Versioned<DirEntryRecord>>>();
  /** Last revision applied per key, deletes included. */
  readonly #revs = new Map<string, number>();
  #inoNext = 0;
  #inoEnd = 0;
  #watch: AsyncIterable<KvEntry> & { stop(): void } | undefined;
  #watchDone: Promise<void> = Promise.resolve();
  readonly #listeners = new Set<(change: MetaChange) => void>();
  /** Highest stream revision the watch delivered; `#lastCheckedRev` is its value at the last check. */
  #watchRev = 0;
  #lastCheckedRev = -1;
  #watchdog: NodeJS.Timeout | undefined;
  #checking = false;
  #closed = false;

  constructor(
    readonly kv: KV,
    private readonly locks: KV,
    private readonly opTimeoutMs: number,
  ) {}

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
  async #guarded<T>(what: string, key: string, rev: number, write: () => Promise<T>, preclaimed = false): Promise<T> {
    if (!preclaimed) await this.#claim(what, key, rev);
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
      const status = await withTimeout("check watch", this.opTimeoutMs, () => this.kv.status());
      const last = status.streamInfo.state.last_seq;
      if (last > this.#watchRev && this.#watchRev === this.#lastCheckedRev && !this.#closed) {
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
    this.#apply(e.key, e.revision, e.operation === "PUT" ? e.value : null, true);
  }

  #apply(key: string, rev: number, value: Uint8Array | null, fromWatch = false): void {
    const last = this.#revs.get(key) ?? 0;
    if (rev <= last) return;
    this.#revs.set(key, rev);
    let change: MetaChange;
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
    } else {
      return; // the inode counter
    }
    for (const l of this.#listeners) l(change);
  }

  inode(ino: number): Versioned<InodeRecord> | undefined {
    return this.#inodes.get(ino);
  }

  /** The inode as JetStream has it now (one round trip): used on open for close-to-open consistency. */
  async fetchInode(ino: number): Promise<Versioned<InodeRecord> | undefined> {
    const key = inodeKey(ino);
    const e = await withTimeout("get inode", this.opTimeoutMs, () => this.kv.get(key));
    if (e === null) return this.#inodes.get(ino);
    this.#apply(key, e.revision, e.operation === "PUT" ? e.value : null);
    return this.#inodes.get(ino);
  }

  entry(parent: number, encodedName: string): Versioned<DirEntryRecord> | undefined {
    return this.#dirs.get(parent)?.get(encodedName);
  }

  /** Looks a name up in JetStream itself, for a miss that may only be the watch lagging. */
  async fetchEntry(parent: number, encodedName: string): Promise<Versioned<DirEntryRecord> | undefined> {
    const key = dirEntryKey(parent, encodedName);
    const e = await withTimeout("get entry", this.opTimeoutMs, () => this.kv.get(key));
    if (e !== null) this.#apply(key, e.revision, e.operation === "PUT" ? e.value : null);
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

  async allocateIno(): Promise<number> {
    if (this.#inoNext >= this.#inoEnd) {
      for (let i = 0; ; i++) {
        const e = await withTimeout("get inode counter", this.opTimeoutMs, () => this.kv.get(INO_COUNTER_KEY));
        if (e === null) throw new FsError("EIO", "inode counter missing");
        const next = Number(new TextDecoder().decode(e.value));
        try {
          await this.#guarded("reserve inodes", INO_COUNTER_KEY, e.revision, () =>
            this.kv.update(INO_COUNTER_KEY, new TextEncoder().encode(String(next + INO_RANGE)), e.revision),
          );
          this.#inoNext = next;
          this.#inoEnd = next + INO_RANGE;
          break;
        } catch (err) {
          if (!isWrongRevision(err) || i >= MAX_CAS_RETRIES) throw err;
        }
      }
    }
    if (this.#inoEnd > 0xffff_ffff) throw new FsError("ENOSPC", "inode numbers exhausted");
    return this.#inoNext++;
  }

  async createInode(ino: number, rec: InodeRecord): Promise<number> {
    const key = inodeKey(ino);
    const value = encodeInode(rec);
    const rev = await this.#createKey("create inode", key, value);
    this.#apply(key, rev, value);
    return rev;
  }

  /** CAS on the inode; EIO-free retry is the caller's (see `mutateInode`). */
  async updateInode(ino: number, rec: InodeRecord, rev: number, preclaimed = false): Promise<number> {
    const key = inodeKey(ino);
    const value = encodeInode(rec);
    const newRev = await this.#guarded("update inode", key, rev, () => this.kv.update(key, value, rev), preclaimed);
    this.#apply(key, newRev, value);
    return newRev;
  }

  /**
   * Read-modify-write of one inode with compare-and-set: `fn` gets a copy of the latest record and
   * changes it (or throws an FsError); on a revision conflict the latest record is fetched and `fn` runs
   * again, so no concurrent update is lost.
   */
  async mutateInode(ino: number, fn: (rec: InodeRecord) => void, claimedRev?: number): Promise<InodeRecord> {
    let cur = this.#inodes.get(ino) ?? (await this.fetchInode(ino));
    for (let i = 0; ; i++) {
      if (cur === undefined) throw new FsError("ENOENT", `inode ${ino} is gone`);
      const rec = cloneInode(cur.value);
      fn(rec);
      try {
        await this.updateInode(ino, rec, cur.rev, i === 0 && claimedRev === cur.rev);
        return rec;
      } catch (err) {
        if (!isWrongRevision(err) || i >= MAX_CAS_RETRIES) throw err;
        // Back off a little: the winner's update may still be on its way to the stream.
        await new Promise((r) => setTimeout(r, 1 + Math.random() * Math.min(50, 3 * i)));
        cur = await this.fetchInode(ino);
      }
    }
  }

  /**
   * Claims the inode's current revision ahead of an update (a file's close claims while its last
   * blocks upload, saving a round trip); `undefined` if someone else holds it. An unused claim expires.
   */
  async claimInode(ino: number): Promise<number | undefined> {
    const cur = this.#inodes.get(ino);
    if (cur === undefined) return undefined;
    try {
      await this.#claim("claim inode", inodeKey(ino), cur.rev);
      return cur.rev;
    } catch {
      return undefined;
    }
  }

  releaseInodeClaim(ino: number, rev: number): void {
    void this.locks.purge(`${inodeKey(ino)}.${rev}`).catch(() => {});
  }

  async deleteInode(ino: number): Promise<void> {
    const key = inodeKey(ino);
    await withTimeout("delete inode", this.opTimeoutMs, () => this.kv.purge(key));
    this.#apply(key, Number.MAX_SAFE_INTEGER, null);
  }

  /** Creates a directory entry; exactly one of several racing creators wins, the others get EEXIST. */
  async createEntry(parent: number, encodedName: string, e: DirEntryRecord): Promise<void> {
    const key = dirEntryKey(parent, encodedName);
    const value = encodeDirEntry(e);
    try {
      const rev = await this.#createKey("create entry", key, value);
      this.#apply(key, rev, value);
    } catch (err) {
      if (isWrongRevision(err)) {
        await this.fetchEntry(parent, encodedName).catch(() => undefined);
        throw new FsError("EEXIST", "file exists", { cause: err });
      }
      throw err;
    }
  }

  /** Points an existing entry at another inode, if it is still at `rev` (rename over a target). */
  async replaceEntry(parent: number, encodedName: string, e: DirEntryRecord, rev: number): Promise<void> {
    const key = dirEntryKey(parent, encodedName);
    const value = encodeDirEntry(e);
    const newRev = await this.#guarded("replace entry", key, rev, () => this.kv.update(key, value, rev));
    this.#apply(key, newRev, value);
  }

  /** Removes an entry if it is still at `rev`; a conflict means another node changed it first. */
  async deleteEntry(parent: number, encodedName: string, rev: number): Promise<void> {
    const key = dirEntryKey(parent, encodedName);
    await this.#guarded("delete entry", key, rev, () => this.kv.delete(key, { previousSeq: rev }));
    // The delete marker's revision is unknown here; the watch delivers it, and nothing older can follow.
    const r = (this.#revs.get(key) ?? rev) + 1;
    this.#apply(key, Math.max(r, rev + 1), null);
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
