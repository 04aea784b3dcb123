import { writeSync } from "node:fs";
import { mkdir, open, readdir, readFile, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { pack, unpack } from "msgpackr";
import { FsError } from "./errors.js";

/**
 * A segment is closed and a new one begun past this size; a closed segment is deleted once every
 * operation in it is stored. Small enough that the acknowledged past costs little disk, large enough
 * that rolling is rare (a create's records are about 200 bytes).
 */
const SEGMENT_BYTES = 8 * 1024 * 1024;
/** Stored-up-to marks are gathered this long into one record. */
const ACK_GATHER_MS = 20;
/** Batches up to this size are written synchronously (page cache, microseconds); larger ones through the pool. */
const SYNC_WRITE_BYTES = 256 * 1024;

/** One metadata change waiting to be stored in JetStream, in the order it was made. */
export interface JournalOp {
  readonly seq: number;
  /** Metadata bucket key (`i.<ino>`, `d.<parent>.<name>`, `l.<dir>`). */
  readonly key: string;
  /** The new value; `null` deletes the key (`purge`: and its history). */
  readonly value: Uint8Array | null;
  readonly purge?: boolean;
  /** The directory lease under which the change was made. */
  readonly lease: number;
  /** Blocks that must be stored before this change may be (the inode points at them). */
  readonly blocks?: readonly string[];
  /** Blocks no longer referenced once this change is stored. */
  readonly free?: readonly string[];
  /** When the change was made (ms since the epoch), for the oldest-dirty age. */
  readonly t: number;
  /** In the journal only: the bytes of small blocks this change is the first to point at. */
  readonly blockData?: readonly (readonly [string, Uint8Array])[];
}

type Record = { readonly k: "op"; readonly op: JournalOp } | { readonly k: "ack"; readonly seq: number };

/**
 * The node's journal on local disk: length-prefixed msgpack records in numbered segment files.
 * Operations are appended before they are applied, and "stored up to seq N" marks follow as JetStream
 * acknowledges them, so a daemon killed at any moment finds, when it starts again, exactly the
 * changes it had not yet stored. Appends made in one tick go out in one write(2): the page cache is
 * enough to survive a crash of the software (a lost machine loses what it had not stored, as the
 * consistency model says).
 */
export class JournalLog {
  #fh: FileHandle | undefined;
  #segment = 0;
  #segmentBytes = 0;
  /** Highest op seq per segment number, for deleting segments whose ops are all stored. */
  readonly #segmentMaxSeq = new Map<number, number>();
  #batch: Buffer[] = [];
  #batchDone: Promise<void> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #ackSeq = 0;
  #ackTimer: NodeJS.Timeout | undefined;

  private constructor(readonly dir: string) {}

  /** Opens the journal in `dir` and returns what it still holds: the ops after the last stored mark. */
  static async open(dir: string): Promise<{ log: JournalLog; pending: JournalOp[]; nextSeq: number }> {
    await mkdir(dir, { recursive: true });
    const log = new JournalLog(dir);
    const segments = (await readdir(dir))
      .map((f) => /^seg-(\d+)\.log$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const ops = new Map<number, JournalOp>();
    let acked = 0;
    let maxSeq = 0;
    for (const n of segments) {
      let segMax = 0;
      for (const r of parseRecords(await readFile(join(dir, segmentName(n))))) {
        if (r.k === "ack") acked = Math.max(acked, r.seq);
        else {
          ops.set(r.op.seq, r.op);
          segMax = Math.max(segMax, r.op.seq);
        }
      }
      maxSeq = Math.max(maxSeq, segMax);
      log.#segmentMaxSeq.set(n, segMax);
    }
    const pending = [...ops.values()].filter((op) => op.seq > acked).sort((a, b) => a.seq - b.seq);
    log.#segment = (segments[segments.length - 1] ?? 0) + 1;
    log.#fh = await open(join(dir, segmentName(log.#segment)), "a");
    // What was stored is never read again: mark it so in the new segment, then drop the old ones.
    if (pending.length === 0) await log.#dropSegmentsUpTo(maxSeq);
    return { log, pending, nextSeq: maxSeq + 1 };
  }

  /** Appends an op; resolves once it is written (with everything else appended in this tick). */
  append(op: JournalOp): Promise<void> {
    const n = this.#segment;
    this.#segmentMaxSeq.set(n, Math.max(this.#segmentMaxSeq.get(n) ?? 0, op.seq));
    return this.#add({ k: "op", op });
  }

  /**
   * Records that every op up to `seq` is stored, and deletes the segments that held only those. Marks
   * are gathered for `ACK_GATHER_MS` (one record, not one per acknowledgement): a crash in between
   * only sends a few stored changes again, which leaves every key as it was.
   */
  markStored(seq: number): void {
    this.#ackSeq = Math.max(this.#ackSeq, seq);
    this.#ackTimer ??= setTimeout(() => this.#writeAck(), ACK_GATHER_MS);
  }

  #writeAck(): Promise<void> {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const seq = this.#ackSeq;
    return this.#add({ k: "ack", seq })
      .then(() => this.#dropSegmentsUpTo(seq))
      .catch(() => {});
  }

  #add(r: Record): Promise<void> {
    const body = pack(r);
    const frame = Buffer.allocUnsafe(4 + body.length);
    frame.writeUInt32LE(body.length, 0);
    body.copy(frame, 4);
    this.#batch.push(frame);
    this.#batchDone ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        const batch = Buffer.concat(this.#batch);
        this.#batch = [];
        this.#batchDone = undefined;
        this.#writing = this.#writing.then(() => this.#write(batch));
        this.#writing.then(resolve, reject);
      });
    });
    return this.#batchDone;
  }

  async #write(data: Buffer): Promise<void> {
    const fh = this.#fh;
    if (fh === undefined) throw new FsError("EIO", "journal is closed");
    try {
      // A tick's records are small: written to the page cache straight from this thread, which costs
      // far less than a trip through the thread pool (the call that made them waits for this).
      if (data.length <= SYNC_WRITE_BYTES) {
        for (let at = 0; at < data.length; ) at += writeSync(fh.fd, data, at);
      } else await fh.write(data);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code === "ENOSPC" ? "ENOSPC" : "EIO";
      throw new FsError(code, `journal write failed: ${(err as Error).message}`, { cause: err });
    }
    this.#segmentBytes += data.length;
    if (this.#segmentBytes >= SEGMENT_BYTES) {
      await fh.close();
      this.#segment++;
      this.#segmentBytes = 0;
      this.#fh = await open(join(this.dir, segmentName(this.#segment)), "a");
    }
  }

  async #dropSegmentsUpTo(seq: number): Promise<void> {
    for (const [n, max] of [...this.#segmentMaxSeq]) {
      if (n === this.#segment || max > seq) continue;
      this.#segmentMaxSeq.delete(n);
      await unlink(join(this.dir, segmentName(n))).catch(() => {});
    }
  }

  async close(): Promise<void> {
    if (this.#ackTimer !== undefined) await this.#writeAck();
    await this.#batchDone?.catch(() => {});
    await this.#writing.catch(() => {});
    await this.#fh?.close();
    this.#fh = undefined;
  }
}

const segmentName = (n: number): string => `seg-${String(n).padStart(8, "0")}.log`;

/** Records of one segment; a torn last record (the daemon died mid-write) ends the segment. */
function parseRecords(data: Buffer): Record[] {
  const out: Record[] = [];
  let at = 0;
  while (at + 4 <= data.length) {
    const len = data.readUInt32LE(at);
    if (at + 4 + len > data.length) break;
    try {
      const r = unpack(data.subarray(at + 4, at + 4 + len)) as Record;
      if (r !== null && typeof r === "object" && (r.k === "ack" || r.k === "op")) out.push(r);
    } catch {
      break;
    }
    at += 4 + len;
  }
  return out;
}
