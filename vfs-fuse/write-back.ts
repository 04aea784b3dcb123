import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { newBlockId } from "./block-store.js";
import { META_BUCKET } from "./buckets.js";
import type { DiskBlockCache } from "./disk-block-cache.js";
import type { CloudFsWriteBackFigures } from "../pseudokernel/index.js";
import { FsError } from "./errors.js";
import { JournalLog, type JournalOp } from "./journal-log.js";

/**
 * Dirty file data a node may hold before writers wait: blocks written to its disk and not yet stored
 * in JetStream. Bounds the disk (and the loss if the machine goes) while leaving room for a whole
 * 1 GiB write to land at disk speed.
 */
export const MAX_DIRTY_BYTES = 1024 * 1024 * 1024;
/**
 * Of the dirty blocks, this much is also kept in memory so the upload need not read them back. Small
 * blocks (a tar's, a build's files) may use all of it: beyond it each costs a file of its own, about
 * as much as the rest of its close; a round's worth of them fits (3 s at 500 files of 128 KiB a
 * second is 190 MiB). Half of it full releases the round early, so memory empties before it spills.
 */
const MAX_DIRTY_IN_MEMORY_BYTES = 256 * 1024 * 1024;
/** Large blocks (a big file's, which are on disk anyway) are kept in memory only up to this. */
const MAX_LARGE_IN_MEMORY_BYTES = 64 * 1024 * 1024;
/**
 * Blocks up to this size are staged in memory and journaled with the change that points at them
 * (see `stage`): a file of their own costs a small file's close more than its bytes do.
 */
const JOURNALED_BLOCK_BYTES = 256 * 1024;
/** Block uploads at once: enough to keep an R3 stream busy (it peaks near 8 in flight here). */
const MAX_UPLOADS_IN_FLIGHT = 8;
/**
 * Metadata changes published and not yet acknowledged: a tar's creates go out pipelined; far beyond
 * this JetStream only queues them (and a failure resends this many).
 */
const MAX_OPS_IN_FLIGHT = 512;
/** Wait before resending after JetStream refused or timed out (leader election, server gone). */
const RETRY_DELAY_MS = 250;

/** What the node holds unstored (the figures its heartbeat carries), and its cap. */
export interface WriteBackStatus extends CloudFsWriteBackFigures {
  readonly dirtyCapBytes: number;
  /** Blocks no stored inode points at any more, not yet purged from JetStream (nothing to lose: space to free). */
  readonly purgesPending: number;
}

interface Staged {
  readonly bytes: number;
  data: Buffer | undefined;
  readonly stored: Promise<void>;
  /**
   * A small block kept in memory only: its bytes go into the journal with the first change that
   * points at it (so a crash loses neither), instead of into a file of its own.
   */
  inJournal?: boolean;
  /** Its bytes are in the journal. */
  journaled?: boolean;
}

interface Pending {
  /** The change; a later value of the same inode may be folded into it while it waits (see `#fold`). */
  op: JournalOp;
  stored: boolean;
  /** Already held back once (see `holdBack`). */
  held?: boolean;
  /** Journaled changes this one stands for (1 + the later ones folded into it). */
  count: number;
}

/**
 * The write-back interval: what a node journals is released to JetStream in rounds, one this often
 * (the Linux flusher's dirty_writeback_centisecs; CephFS's client holds dirty data up to 5 s). Until
 * its round comes a change waits, so that:
 * - what a program does to one file in a row (tar: create, write, close, chown, chmod) goes to
 *   JetStream as one inode record, not five;
 * - a burst of work (a tar, a build, a clone) runs at the speed of the node's disk instead of sharing
 *   the CPUs with its own replication at every step, and JetStream gets it in large batches, which
 *   cost its servers a fraction of the same messages sent one by one as they come.
 * Nothing waits for a round when someone waits for storage (fsync, sync, a recall by another node's
 * open or lookup, strict mode) or when the node holds much (`DIRTY_BACKGROUND_BYTES`,
 * `MAX_UNRELEASED_OPS`). So a closed file that was not fsynced is stored within this interval plus
 * its upload time.
 */
export const WRITE_BACK_INTERVAL_MS = 3_000;
/**
 * Dirty data beyond which blocks are uploaded as they are staged, not at the next round (Linux's
 * dirty_background_bytes; half the cap, as Linux's default background and dirty ratios are 10 % and
 * 20 %): a long sequential write streams out instead of piling up to the cap. Lower, a large write
 * shares the CPUs with its upload sooner (slower to write, sooner stored); higher, the reverse.
 */
const DIRTY_BACKGROUND_BYTES = MAX_DIRTY_BYTES / 2;
/** Changes waiting for their round beyond which they are released at once (bounds the queue's memory). */
const MAX_UNRELEASED_OPS = 20_000;

/**
 * Longest a new file's name is held back waiting for its first close, so that a node lost right
 * after closing it leaves the file whole or absent, never empty; a file open longer shows empty.
 */
const NEW_FILE_HOLD_MS = 200;

/**
 * For a change that names a new file: resolves when its first commit is journaled (or it is closed
 * without one), with that commit's key; `undefined` for every other change.
 */
export type HoldBack = (op: JournalOp) => Promise<string | undefined> | undefined;

/**
 * The node's write-back: changes are journaled on local disk and stored in JetStream behind the
 * caller, in order. File data is staged as immutable blocks on disk and uploaded in parallel; a
 * metadata change is published only after the blocks it points at are stored (so JetStream never
 * holds an inode pointing at a missing block) and after every change journaled before it (so what
 * JetStream holds is always a prefix of what the node did). Publishes are pipelined; on any failure
 * everything from the failed one on is sent again in order, which leaves each key with its last value.
 */
export class WriteBack {
  readonly #queue: Pending[] = [];
  /** Changes `#moveAfter` put behind later ones: the rest of the queue stays in seq order. */
  readonly #outOfOrder = new Set<Pending>();
  #next = 0;
  #inflight = 0;
  #epoch = 0;
  #nextSeq: number;
  /** Every op up to this seq is stored. */
  #storedUpTo: number;
  #lastSeq: number;
  readonly #waiters: { seq: number; resolve: () => void }[] = [];
  readonly #lastSeqOfLease = new Map<number, number>();
  /** Stream revision of the last stored change per lease, for a recalling node to wait on. */
  readonly #lastRevOfLease = new Map<number, number>();
  readonly #staged = new Map<string, Staged>();
  #dirtyBytes = 0;
  #dirtyInMemory = 0;
  #purgesPending = 0;
  #spaceWaiters: (() => void)[] = [];
  #uploads = 0;
  #uploadQueue: (() => void)[] = [];
  #pumping = false;
  #resending = false;
  /** Per inode key, its last change not yet sent (where a later value of it may be folded). */
  readonly #unsent = new Map<string, Pending>();
  /** Seq of the last change that removed something or moved a lease: nothing is folded across it. */
  #barrierSeq = 0;
  /** Who waits for an in-flight publish to settle (the pump for a slot, a resend for all). */
  #slotWaiters: (() => void)[] = [];
  #closed = false;
  #publishTimeoutMs = 10_000;
  /** Set by the core: told of each small block once stored, with its bytes (for the memory cache). */
  onBlockStored: (id: string, data: Buffer) => void = () => {};
  /** Told of a block no stored inode points at any more, before it is purged (the caches drop it). */
  onBlockFreed: (id: string) => void = (id) => this.disk.delete(id);
  /** Set by the core: which changes wait for a new file's first commit. */
  holdBack: HoldBack = () => undefined;
  /** Ends the pump's wait for a new file's first close: someone waits for storage. */
  #wake: () => void = () => {};
  /** Changes up to this seq are released to JetStream (their round came, or someone waits for them). */
  #releasedUpTo = 0;
  /** The next round, which the pump and held block uploads wait for; there while anyone does. */
  #nextRound: { readonly came: Promise<void>; readonly release: () => void; readonly timer: NodeJS.Timeout } | undefined;
  readonly #js: JetStreamClient;

  private constructor(
    nc: NatsConnection,
    private readonly meta: KV,
    private readonly blocksKv: KV,
    private readonly log: JournalLog,
    private readonly blockDir: string,
    private readonly disk: DiskBlockCache,
    nextSeq: number,
    /** Told of each change once stored, with its stream revision. */
    private readonly onStored: (op: JournalOp, rev: number) => void,
  ) {
    this.#js = jetstream(nc);
    this.#nextSeq = nextSeq;
    this.#storedUpTo = nextSeq - 1;
    this.#lastSeq = nextSeq - 1;
    this.#releasedUpTo = nextSeq - 1;
  }

  /**
   * Opens the journal in `dir` and the blocks staged there. Returns the changes a previous run left
   * unstored; the caller decides which still hold (`resume`) before anything is published.
   */
  static async open(options: {
    readonly nc: NatsConnection;
    readonly meta: KV;
    readonly blocks: KV;
    readonly dir: string;
    readonly disk: DiskBlockCache;
    /** Longest wait for one publish's acknowledgement before it is counted as failed and resent. */
    readonly publishTimeoutMs: number;
    readonly onStored: (op: JournalOp, rev: number) => void;
  }): Promise<{ writeBack: WriteBack; leftover: JournalOp[] }> {
    const blockDir = join(options.dir, "blocks");
    await mkdir(blockDir, { recursive: true });
    const { log, pending, nextSeq } = await JournalLog.open(join(options.dir, "log"));
    const wb = new WriteBack(options.nc, options.meta, options.blocks, log, blockDir, options.disk, nextSeq, options.onStored);
    wb.#publishTimeoutMs = options.publishTimeoutMs;
    for (const id of await readdir(blockDir)) {
      const bytes = (await stat(join(blockDir, id))).size;
      wb.#dirtyBytes += bytes;
      wb.#staged.set(id, { bytes, data: undefined, stored: quiet(wb.#upload(id, bytes)) });
    }
    // Small blocks came back inside the changes that point at them.
    const leftover = pending.map((op) => {
      for (const [id, data] of op.blockData ?? []) {
        if (wb.#staged.has(id)) continue;
        const buf = Buffer.from(data);
        wb.#dirtyBytes += buf.length;
        wb.#dirtyInMemory += buf.length;
        wb.#staged.set(id, { bytes: buf.length, data: buf, stored: quiet(wb.#upload(id, buf.length)), inJournal: true });
      }
      const { blockData: _, ...rest } = op;
      return rest;
    });
    return { writeBack: wb, leftover };
  }

  /** Queues the changes a previous run left unstored (those the caller found still hold), in order. */
  resume(ops: readonly JournalOp[]): void {
    // Folded as they were when first made: a new file's final record goes out before its name, so
    // no node ever sees the name of an empty file that was closed with bytes.
    for (const op of ops) if (!this.#fold(op)) this.#enqueue(op);
    // What a previous run left has waited long enough.
    this.#releaseAll();
    if (ops.length === 0 && this.#queue.length === 0) this.log.markStored(this.#storedUpTo);
    this.#pump();
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  status(): WriteBackStatus {
    const head = this.#queue[0];
    return {
      dirtyBytes: this.#dirtyBytes,
      dirtyCapBytes: MAX_DIRTY_BYTES,
      oldestDirtyAgeMs: head === undefined ? 0 : Math.max(0, Date.now() - head.op.t),
      pendingOps: this.#queue.length,
      purgesPending: this.#purgesPending,
    };
  }

  // ---- file data ------------------------------------------------------------------------------

  /**
   * Writes a block to the node's disk and starts storing it; resolves with its id once it is on disk.
   * Waits while the node already holds `MAX_DIRTY_BYTES` of unstored data.
   */
  async stage(data: Buffer): Promise<string> {
    while (this.#dirtyBytes > 0 && this.#dirtyBytes + data.length > MAX_DIRTY_BYTES) {
      await new Promise<void>((r) => this.#spaceWaiters.push(r));
      if (this.#closed) throw new FsError("EIO", "CloudFS is closing");
    }
    const id = newBlockId();
    this.#dirtyBytes += data.length;
    if (this.#dirtyBytes > DIRTY_BACKGROUND_BYTES) this.#releaseAll();
    if (data.length <= JOURNALED_BLOCK_BYTES && this.#dirtyInMemory + data.length <= MAX_DIRTY_IN_MEMORY_BYTES) {
      this.#dirtyInMemory += data.length;
      if (this.#dirtyInMemory > MAX_DIRTY_IN_MEMORY_BYTES / 2) this.#releaseAll();
      this.#staged.set(id, { bytes: data.length, data, stored: quiet(this.#upload(id, data.length)), inJournal: true });
      return id;
    }
    try {
      await writeFile(join(this.blockDir, id), data);
    } catch (err) {
      this.#dirtyBytes -= data.length;
      const code = (err as NodeJS.ErrnoException).code === "ENOSPC" ? "ENOSPC" : "EIO";
      throw new FsError(code, `staging a block: ${(err as Error).message}`, { cause: err });
    }
    const keep = this.#dirtyInMemory + data.length <= MAX_LARGE_IN_MEMORY_BYTES;
    if (keep) this.#dirtyInMemory += data.length;
    this.#staged.set(id, { bytes: data.length, data: keep ? data : undefined, stored: quiet(this.#upload(id, data.length)) });
    return id;
  }

  /** A block still staged on this node (not yet stored, or stored and not yet moved to the cache). */
  async staged(id: string): Promise<Buffer | undefined> {
    const s = this.#staged.get(id);
    if (s === undefined) return undefined;
    if (s.data !== undefined) return s.data;
    return readFile(join(this.blockDir, id)).catch(() => undefined);
  }

  /** Stores a staged block, retrying until JetStream takes it; then it moves to the block cache. */
  async #upload(id: string, bytes: number): Promise<void> {
    await this.#round();
    await this.#uploadSlot();
    try {
      const path = join(this.blockDir, id);
      for (let attempt = 0; ; attempt++) {
        if (this.#closed) throw new FsError("EIO", "CloudFS is closing");
        try {
          const data = this.#staged.get(id)?.data ?? (await readFile(path));
          await this.blocksKv.put(id, data, { timeout: this.#publishTimeoutMs });
          break;
        } catch (err) {
          if (err instanceof FsError) throw err;
          await sleep(Math.min(2000, RETRY_DELAY_MS * (attempt + 1)));
        }
      }
      const s = this.#staged.get(id);
      if (s?.data !== undefined) this.#dirtyInMemory -= s.bytes;
      this.#staged.delete(id);
      if (s?.inJournal === true) this.onBlockStored(id, s.data!);
      else await this.disk.adopt(id, path, bytes);
      this.#dirtyBytes -= bytes;
      for (const w of this.#spaceWaiters.splice(0)) w();
    } finally {
      this.#uploads--;
      this.#uploadQueue.shift()?.();
    }
  }

  async #uploadSlot(): Promise<void> {
    if (this.#uploads < MAX_UPLOADS_IN_FLIGHT) {
      this.#uploads++;
      return;
    }
    await new Promise<void>((r) => this.#uploadQueue.push(r));
    this.#uploads++;
  }

  // ---- metadata changes -----------------------------------------------------------------------

  /** Journals a change; resolves with its seq once it is on disk. JetStream gets it behind. */
  async append(change: Omit<JournalOp, "seq" | "t">): Promise<number> {
    if (this.#closed) throw new FsError("EIO", "CloudFS is closing");
    const op: JournalOp = { ...change, seq: this.#nextSeq++, t: Date.now() };
    if (!this.#fold(op)) this.#enqueue(op);
    if (this.#queue.length - this.#next > MAX_UNRELEASED_OPS) this.#releaseAll();
    // The bytes of small blocks travel in the journal with the first change that points at them.
    let blockData: [string, Uint8Array][] | undefined;
    for (const id of op.blocks ?? []) {
      const st = this.#staged.get(id);
      if (st?.inJournal !== true || st.data === undefined || st.journaled === true) continue;
      st.journaled = true;
      (blockData ??= []).push([id, st.data]);
    }
    await this.log.append(blockData === undefined ? op : { ...op, blockData });
    this.#pump();
    return op.seq;
  }

  #enqueue(op: JournalOp): void {
    const p: Pending = { op, stored: false, count: 1 };
    this.#queue.push(p);
    this.#noteSeq(op);
    if (op.value === null || op.key.startsWith("l.")) this.#barrierSeq = op.seq;
    else if (op.key.startsWith("i.")) this.#unsent.set(op.key, p);
  }

  #noteSeq(op: JournalOp): void {
    this.#lastSeq = op.seq;
    this.#lastSeqOfLease.set(op.lease, op.seq);
  }

  /**
   * Folds a new value of an inode into its change still waiting to be sent: JetStream then gets the
   * inode's latest record once, at the earlier change's place. Only across changes that add (names,
   * other inodes): never across a removal or a lease's move, so no name is ever stored gone while
   * its inode is stored older, and a record never points at a block before it is stored (the folded
   * change waits for the blocks of both).
   */
  #fold(op: JournalOp): boolean {
    // Inode records and directory times (`t.`): a later value replaces the waiting one.
    if (op.value === null || !(op.key.startsWith("i.") || op.key.startsWith("t."))) return false;
    const q = this.#unsent.get(op.key);
    if (q === undefined || q.op.value === null || q.op.lease !== op.lease || q.op.seq < this.#barrierSeq) return false;
    const free = [...(q.op.free ?? []), ...(op.free ?? [])];
    const dropped = new Set(free);
    const blocks = [...new Set([...(q.op.blocks ?? []), ...(op.blocks ?? [])])].filter((id) => !dropped.has(id));
    q.op = { ...q.op, value: op.value, blocks, free };
    q.count++;
    this.#noteSeq(op);
    return true;
  }

  /** Resolves once every change up to `seq` is stored. */
  stored(seq: number): Promise<void> {
    if (seq <= this.#storedUpTo) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.#waiters.push({ seq, resolve }));
    // What comes before `seq` must be stored first (JetStream holds a prefix): all of it goes now.
    this.#releaseAll(true);
    return p;
  }

  // ---- rounds -----------------------------------------------------------------------------------

  /** Resolves at the next round, or sooner (`#releaseAll`); the first to wait starts its clock. */
  #round(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#nextRound === undefined) {
      let release: () => void = () => {};
      const came = new Promise<void>((r) => (release = r));
      this.#nextRound = { came, release, timer: setTimeout(() => this.#releaseAll(), WRITE_BACK_INTERVAL_MS) };
    }
    return this.#nextRound.came;
  }

  /** Lets everyone waiting for the next round go now. */
  #endRound(): void {
    const round = this.#nextRound;
    this.#nextRound = undefined;
    if (round === undefined) return;
    clearTimeout(round.timer);
    round.release();
  }

  /**
   * Releases everything journaled and staged so far to JetStream. `urgent`: someone waits for it, so
   * a new file's name is not held back for its first close either.
   */
  #releaseAll(urgent = false): void {
    this.#releasedUpTo = this.#lastSeq;
    this.#endRound();
    if (urgent) this.#wake();
    this.#pump();
  }

  /** Stores everything journaled so far. */
  sync(): Promise<void> {
    return this.stored(this.#lastSeq);
  }

  /** Stores every change made under `lease`; resolves with the stream revision a reader must reach. */
  async flushLease(lease: number): Promise<number> {
    await this.stored(this.#lastSeqOfLease.get(lease) ?? 0);
    return this.#lastRevOfLease.get(lease) ?? 0;
  }

  #pump(): void {
    if (this.#pumping || this.#closed) return;
    this.#pumping = true;
    void (async () => {
      try {
        while (this.#next < this.#queue.length && !this.#closed) {
          if (this.#inflight >= MAX_OPS_IN_FLIGHT) {
            await new Promise<void>((r) => this.#slotWaiters.push(r));
            continue;
          }
          const p = this.#queue[this.#next]!;
          const epoch = this.#epoch;
          // Its round has not come. Someone who waits for storage (fsync, a recall) released
          // everything up to what they wait for (`stored`), so nothing they need waits here.
          if (p.op.seq > this.#releasedUpTo) {
            await this.#round();
            continue;
          }
          const hold = p.held === true || this.#waiters.length > 0 ? undefined : this.holdBack(p.op);
          if (hold !== undefined) {
            p.held = true;
            const commitKey = await Promise.race([hold, this.#pause(NEW_FILE_HOLD_MS)]);
            if (epoch !== this.#epoch || this.#closed) continue;
            if (commitKey !== undefined) this.#moveAfter(this.#next, commitKey);
            continue;
          }
          // Nothing folds into a change on its way out: it would point at blocks not waited for here.
          if (this.#unsent.get(p.op.key) === p) this.#unsent.delete(p.op.key);
          const waits = (p.op.blocks ?? []).map((id) => this.#staged.get(id)?.stored).filter((w) => w !== undefined);
          if (waits.length > 0) await Promise.all(waits).catch(() => {});
          if (epoch !== this.#epoch || this.#closed) continue;
          this.#next++;
          this.#send(p, epoch);
        }
      } catch {
        // Never left without a pump: try again shortly.
        setTimeout(() => this.#pump(), RETRY_DELAY_MS);
      } finally {
        this.#pumping = false;
      }
    })();
  }

  /** Waits `ms`, or until someone waits for storage; resolves undefined either way. */
  #pause(ms: number): Promise<undefined> {
    return new Promise<undefined>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve(undefined);
      }
      this.#wake = () => {
        this.#wake = () => {};
        done();
      };
    });
  }

  #send(p: Pending, epoch: number): void {
    this.#inflight++;
    const { op } = p;
    const subject = `$KV.${META_BUCKET}.${op.key}`;
    let sent: Promise<{ seq: number }>;
    try {
      if (op.value !== null) {
        sent = this.#js.publish(subject, op.value, { timeout: this.#publishTimeoutMs });
      } else {
        const h = headers();
        h.set("KV-Operation", op.purge === true ? "PURGE" : "DEL");
        if (op.purge === true) h.set("Nats-Rollup", "sub");
        sent = this.#js.publish(subject, new Uint8Array(0), { headers: h, timeout: this.#publishTimeoutMs });
      }
    } catch (err) {
      // Refused before it left (a connection between servers): the same as a failed publish.
      sent = Promise.reject(err);
    }
    sent.then(
      (ack) => {
        this.#settle();
        if (epoch !== this.#epoch) return;
        p.stored = true;
        this.#lastRevOfLease.set(op.lease, Math.max(this.#lastRevOfLease.get(op.lease) ?? 0, ack.seq));
        for (let i = 0; i < p.count; i++) this.onStored(op, ack.seq);
        this.#advance();
      },
      () => {
        this.#settle();
        if (this.#closed || p.stored) return;
        // Any failure, of this pass or an earlier one (a timeout can settle after a later change's),
        // leads to a resend from the first change not stored.
        this.#resend();
      },
    );
  }

  /**
   * Sends again, in order, everything from the first change not stored on, once what is in flight has
   * settled (what was stored after it is sent again too, so each key ends with its last value).
   */
  #resend(): void {
    if (this.#resending) return;
    this.#resending = true;
    this.#epoch++;
    this.#unsent.clear();
    void (async () => {
      try {
        while (this.#inflight > 0) await new Promise<void>((r) => this.#slotWaiters.push(r));
        await sleep(RETRY_DELAY_MS);
      } finally {
        this.#resending = false;
      }
      if (this.#closed) return;
      // Acknowledgements of the pass before are not counted: from the first unstored change on, all go again.
      const first = this.#queue.findIndex((q) => !q.stored);
      if (first < 0) return;
      this.#epoch++;
      for (let i = first; i < this.#queue.length; i++) this.#queue[i]!.stored = false;
      this.#next = first;
      this.#pump();
    })();
  }

  /**
   * Moves the change at `at` to just after the next change of `afterKey` (a new file's name after its
   * first commit: stored together, the file appears whole), unless another change of the same key
   * comes between (their order must hold).
   */
  #moveAfter(at: number, afterKey: string): void {
    const p = this.#queue[at]!;
    for (let j = at + 1; j < this.#queue.length; j++) {
      const q = this.#queue[j]!.op;
      if (q.key === p.op.key) return;
      if (q.key === afterKey) {
        this.#queue.splice(at, 1);
        this.#queue.splice(j, 0, p);
        this.#outOfOrder.add(p);
        return;
      }
    }
  }

  #settle(): void {
    this.#inflight--;
    for (const w of this.#slotWaiters.splice(0)) w();
  }

  #advance(): void {
    let moved = false;
    while (this.#queue[0]?.stored === true) {
      const p = this.#queue.shift()!;
      this.#outOfOrder.delete(p);
      this.#next--;
      moved = true;
      if (p.op.free !== undefined && p.op.free.length > 0) this.#free(p.op.free);
    }
    if (!moved) return;
    // Held-back names leave the queue out of seq order: stored up to just below the lowest left.
    // The first change in order holds the lowest seq of all but the moved ones (a scan of the whole
    // queue per acknowledgement was quadratic in a round's changes).
    let lowest = this.#lastSeq + 1;
    for (const q of this.#queue) {
      if (q.op.seq < lowest) lowest = q.op.seq;
      if (!this.#outOfOrder.has(q)) break;
    }
    for (const q of this.#outOfOrder) if (q.op.seq < lowest) lowest = q.op.seq;
    this.#storedUpTo = Math.max(this.#storedUpTo, lowest - 1);
    this.log.markStored(this.#storedUpTo);
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i]!;
      if (w.seq <= this.#storedUpTo) {
        this.#waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Purges blocks no stored inode points at any more (after the change that dropped them is stored). */
  #free(ids: readonly string[]): void {
    for (const id of ids) {
      const staged = this.#staged.get(id);
      this.#purgesPending++;
      void (staged?.stored ?? Promise.resolve())
        .then(() => {
          this.onBlockFreed(id);
          return this.blocksKv.purge(id);
        })
        .catch(() => {})
        .finally(() => this.#purgesPending--);
    }
  }

  /** Stops publishing. What is not stored stays in the journal for the next start. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#endRound();
    this.#wake();
    for (const w of this.#spaceWaiters.splice(0)) w();
    for (const w of this.#slotWaiters.splice(0)) w();
    await this.log.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An upload fails only when CloudFS closes; its waiters see that, nobody else need. */
function quiet(p: Promise<void>): Promise<void> {
  p.catch(() => {});
  return p;
}
