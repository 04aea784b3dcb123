import type { NatsConnection } from "@nats-io/transport-node";
import { accessedSubject, MAX_OPENED_QUESTION } from "./peer-service.js";
import { homeOf, type InodeRecord } from "./records.js";

/** relatime's third rule: an atime a day old moves on at the next read. */
const DAY_MS = 24 * 60 * 60 * 1000;
/** How long a read's new atime is shown here while the record does not have it yet. */
const SHOWN_MS = 10_000;
/** Atimes shown at most at once (a `grep -r` over a million files must not keep a million). */
const MAX_SHOWN = 65_536;
/** Reads are gathered this long into one message to a lease holder. */
const GATHER_MS = 5;
/**
 * How long the holder waits before it writes the atimes reads moved (as Linux's lazytime keeps them in
 * memory): a burst of reads does not share the machine with a metadata write for each file it reads.
 */
const WRITE_DELAY_MS = 2_000;

/** relatime (mount(8)): a read moves the atime to now when it is not after the mtime and the ctime, or is a day old. */
export function atimeDue(atimeMs: number, rec: Pick<InodeRecord, "mtimeMs" | "ctimeMs">, now: number): boolean {
  return atimeMs <= rec.mtimeMs || atimeMs <= rec.ctimeMs || now - atimeMs >= DAY_MS;
}

export interface AccessTimesOptions {
  readonly nc: NatsConnection;
  readonly inode: (ino: number) => InodeRecord | undefined;
  /** The node that holds a directory's lease, when it is another. */
  readonly otherHolder: (dir: number) => string | undefined;
  /** Whether this node holds a directory's lease now. */
  readonly heldBySelf: (dir: number) => boolean;
  /**
   * Changes inodes' records under their home leases, each lease taken once (core's #underHomeLeases):
   * `change` says, from an inode's current record, what to change in it, or nothing.
   */
  readonly changeAll: (inodes: readonly number[], change: (ino: number, rec: InodeRecord) => ((r: InodeRecord) => void) | undefined) => Promise<unknown>;
  /** This node moved an atime for another node's read: what its own kernel caches of it is stale. */
  readonly changedForPeer: (ino: number) => void;
}

/**
 * File access times with relatime semantics across nodes (#16). The first read through an open file
 * moves its atime to now when relatime says so. The change is made by the node that holds the lease of
 * the file's directory: this one (a journaled change, like any other), or the holder, which a message
 * asks (a read never takes a lease: a reader on another node would pull it away from the writer with
 * every file). Reads do not wait for it, and the holder writes it `WRITE_DELAY_MS` later, many at
 * once; until the record has the new atime, the reading node shows it.
 * It is best effort, as atime is on Linux: an atime a crash or a moved lease loses is not a lost write.
 */
export class AccessTimes {
  readonly #options: AccessTimesOptions;
  /** Inode → [the atime a read here set, when]: shown by stat until the record has it or `SHOWN_MS` passed. */
  readonly #shown = new Map<number, readonly [number, number]>();
  readonly #toSend = new Map<string, Set<number>>();
  #timer: NodeJS.Timeout | undefined;
  /** Inode → [when it was read, for another node]: atimes to write at the next `#write`. */
  readonly #toWrite = new Map<number, [number, boolean]>();
  #writeTimer: NodeJS.Timeout | undefined;

  constructor(options: AccessTimesOptions) {
    this.#options = options;
  }

  /** The atime to show for an inode: its record's, or a newer one a read here set. */
  shownMs(ino: number, rec: InodeRecord): number | undefined {
    const shown = this.#shown.get(ino);
    if (shown === undefined) return undefined;
    if (rec.atimeMs >= shown[0] || Date.now() - shown[1] > SHOWN_MS) {
      this.#shown.delete(ino);
      return undefined;
    }
    return shown[0];
  }

  /** A process of this node read the file (its first read through one open). */
  read(ino: number): void {
    const rec = this.#options.inode(ino);
    if (rec === undefined || rec.nlink === 0 || rec.type !== "file") return;
    const now = Date.now();
    if (!atimeDue(this.shownMs(ino, rec) ?? rec.atimeMs, rec, now)) return;
    if (this.#shown.size >= MAX_SHOWN) {
      for (const [shownIno, [, at]] of this.#shown) if (now - at > SHOWN_MS) this.#shown.delete(shownIno);
    }
    if (this.#shown.size < MAX_SHOWN) this.#shown.set(ino, [now, now]);
    const holder = this.#options.otherHolder(homeOf(rec));
    if (holder === undefined) return this.#apply(ino, now);
    let inodes = this.#toSend.get(holder);
    if (inodes === undefined) this.#toSend.set(holder, (inodes = new Set()));
    inodes.add(ino);
    this.#timer ??= setTimeout(() => this.#send(), GATHER_MS);
  }

  /** Another node's processes read these files: the atimes of those whose directory's lease this node holds move on. */
  readElsewhere(inodes: readonly number[]): void {
    const now = Date.now();
    for (const ino of inodes) {
      const rec = this.#options.inode(ino);
      if (rec !== undefined && rec.type === "file" && this.#options.heldBySelf(homeOf(rec))) this.#apply(ino, now, true);
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#writeTimer);
    this.#timer = this.#writeTimer = undefined;
    this.#toSend.clear();
    this.#toWrite.clear();
  }

  #apply(ino: number, now: number, forPeer = false): void {
    const was = this.#toWrite.get(ino);
    this.#toWrite.set(ino, [Math.max(now, was?.[0] ?? 0), forPeer || was?.[1] === true]);
    this.#writeTimer ??= setTimeout(() => this.#write(), WRITE_DELAY_MS);
  }

  #write(): void {
    this.#writeTimer = undefined;
    const due = new Map(this.#toWrite);
    this.#toWrite.clear();
    void this.#options
      .changeAll([...due.keys()], (ino, rec) => {
        const at = due.get(ino)![0];
        if (!atimeDue(rec.atimeMs, rec, at) || rec.nlink === 0) return undefined;
        return (r) => {
          r.atimeMs = at;
          delete r.atimeNs;
        };
      })
      .then(() => {
        for (const [ino, [, forPeer]] of due) if (forPeer) this.#options.changedForPeer(ino);
      })
      .catch(() => undefined); // gone, or a lease could not be had: best effort
  }

  #send(): void {
    this.#timer = undefined;
    for (const [node, inodes] of this.#toSend) {
      const all = [...inodes];
      for (let i = 0; i < all.length; i += MAX_OPENED_QUESTION) {
        try {
          this.#options.nc.publish(accessedSubject(node), JSON.stringify({ inodes: all.slice(i, i + MAX_OPENED_QUESTION) }));
        } catch {
          // connection closing: best effort
        }
      }
    }
    this.#toSend.clear();
  }
}
