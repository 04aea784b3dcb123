import { BLOCK_SIZE, blockSlices } from "./block-math.js";
import type { BlockStore } from "./block-store.js";
import type { InodeRecord } from "./records.js";
import type { WriteBack } from "./write-back.js";

/** Full blocks being written to the node's disk at once per file; bounds write memory to (this + dirty) MiB. */
const MAX_UPLOADS_IN_FLIGHT = 8;
/** Dirty (partly written) blocks a file may hold before they are all flushed (random writers). */
const MAX_DIRTY_BLOCKS = 16;
/** Blocks read ahead of a sequential reader. */
const READAHEAD_BLOCKS = 8;

/**
 * What a commit changes in the inode: given the latest record, set the new block map and size; says
 * which new blocks the record now points at (stored before it) and which it no longer does (freed).
 */
export type InodeCommit = (apply: (rec: InodeRecord) => { readonly blocks: string[]; readonly free: string[] }) => Promise<InodeRecord>;

/**
 * The node's state of one open inode, shared by all its handles on this node (so writes are visible
 * to every reader on the node at once). Writes go to 1 MiB dirty buffers; a completed block is
 * staged as a new immutable block on the node's disk right away (the write-back stores it behind);
 * `flush()` stages the rest and commits the new block map and size to the inode, under its lease.
 */
export class OpenFile {
  refs = 0;
  /** Size as this node sees it, uncommitted writes included. */
  size: number;
  readonly #dirty = new Map<number, Buffer>();
  /** Blocks uploaded but not yet committed: index → new id (undefined = hole after a truncate). */
  readonly #uploaded = new Map<number, string>();
  /** Blocks being uploaded, still served to readers from memory. */
  readonly #uploading = new Map<number, Buffer>();
  readonly #latestGen = new Map<number, number>();
  #uploadGen = 0;
  readonly #inflight = new Set<Promise<void>>();
  #uploadError: unknown;
  #changed = false;
  /** Lowest size since the last commit: blocks past it are dropped from the map on commit. */
  #truncatedTo: number | undefined;
  #lastReadBlock = -2;
  #commitChain: Promise<void> = Promise.resolve();

  /** Staged blocks replaced before any commit pointed at them: freed with the next commit. */
  #unreferenced: string[] = [];

  constructor(
    readonly ino: number,
    private rec: InodeRecord,
    private readonly commit: InodeCommit,
    private readonly blocks: BlockStore,
    private readonly writeBack: WriteBack,
  ) {
    this.size = rec.size;
  }

  get dirty(): boolean {
    return this.#changed;
  }

  /** Adopts a newer committed record (another node's close) when nothing local is pending. */
  refresh(rec: InodeRecord): void {
    this.rec = rec;
    if (!this.#changed) this.size = rec.size;
  }

  /** A committed block, asked first of the node that wrote it (its cache holds it). */
  #block(id: string): Promise<Buffer> {
    return this.blocks.get(id, this.rec.cachedOn);
  }

  #committedId(index: number): string | undefined {
    if (this.#uploaded.has(index)) return this.#uploaded.get(index);
    if (this.#truncatedTo !== undefined && index * BLOCK_SIZE >= this.#truncatedTo) return undefined;
    return this.rec.blocks[String(index)];
  }

  async read(buf: Buffer, len: number, offset: number): Promise<number> {
    const n = Math.max(0, Math.min(len, this.size - offset));
    const slices = blockSlices(offset, n);
    await Promise.all(
      slices.map(async (s) => {
        const dirty = this.#dirty.get(s.index) ?? this.#uploading.get(s.index);
        if (dirty !== undefined) return void copyOut(dirty, buf, s.bufferOffset, s.start, s.length);
        const id = this.#committedId(s.index);
        if (id === undefined) {
          buf.fill(0, s.bufferOffset, s.bufferOffset + s.length);
          return;
        }
        copyOut(await this.#block(id), buf, s.bufferOffset, s.start, s.length);
      }),
    );
    const last = slices[slices.length - 1];
    if (last !== undefined && last.index !== this.#lastReadBlock) {
      const sequential = last.index === this.#lastReadBlock + 1 || last.index === 0;
      this.#lastReadBlock = last.index;
      if (sequential) {
        for (let i = 1; i <= READAHEAD_BLOCKS; i++) {
          const id = this.#committedId(last.index + i);
          if (id !== undefined && !this.#dirty.has(last.index + i)) this.blocks.prefetch(id, this.rec.cachedOn);
        }
      }
    }
    return n;
  }

  async write(data: Buffer, len: number, offset: number): Promise<number> {
    if (this.#uploadError !== undefined) throw this.#takeUploadError();
    for (const s of blockSlices(offset, len)) {
      let block = this.#dirty.get(s.index);
      const inUpload = this.#uploading.get(s.index);
      if (block === undefined && inUpload !== undefined) {
        block = Buffer.from(inUpload);
        this.#dirty.set(s.index, block);
      }
      const end = s.start + s.length;
      if (block === undefined) {
        const id = this.#committedId(s.index);
        const wholeBlock = s.start === 0 && s.length === BLOCK_SIZE;
        const old = id !== undefined && !wholeBlock ? await this.#block(id) : undefined;
        // A block past the old size may hold stale bytes from before a truncate: keep them zero.
        const validUpTo = Math.max(0, this.size - s.index * BLOCK_SIZE);
        const keep = Math.min(old?.length ?? 0, validUpTo);
        // Past the first block the file is no small file: a whole block at once, not grown in copies
        // (FUSE writes arrive in 128 KiB pieces: doubling copied 0.9 MiB per MiB written).
        block = wholeBlock ? Buffer.allocUnsafe(BLOCK_SIZE) : Buffer.alloc(s.index > 0 ? BLOCK_SIZE : bufferLength(Math.max(keep, end)));
        old?.copy(block, 0, 0, keep);
        this.#dirty.set(s.index, block);
      } else if (block.length < end) {
        block = grown(block, end);
        this.#dirty.set(s.index, block);
      }
      data.copy(block, s.start, s.bufferOffset, s.bufferOffset + s.length);
      this.size = Math.max(this.size, s.index * BLOCK_SIZE + s.start + s.length);
      this.#changed = true;
      if (s.start + s.length === BLOCK_SIZE) await this.#startUpload(s.index);
    }
    this.size = Math.max(this.size, offset + len);
    this.#changed = true;
    if (this.#dirty.size > MAX_DIRTY_BLOCKS) await this.#uploadAll();
    return len;
  }

  async #startUpload(index: number): Promise<void> {
    const block = this.#dirty.get(index);
    if (block === undefined) return;
    this.#dirty.delete(index);
    // Until the upload ends, reads of this block are served from the buffer.
    this.#uploading.set(index, block);
    const gen = ++this.#uploadGen;
    this.#latestGen.set(index, gen);
    // A block is stored only up to the file's end (small files stay small); reads zero-fill the rest.
    const valid = Math.min(BLOCK_SIZE, Math.max(0, this.size - index * BLOCK_SIZE));
    const p = this.writeBack.stage(block.length === valid ? block : exactly(block, valid)).then(
      (id) => {
        // A later rewrite of the same block may have finished first: only the newest upload counts.
        if (this.#latestGen.get(index) === gen) {
          const old = this.#uploaded.get(index);
          if (old !== undefined) this.#unreferenced.push(old);
          this.#uploaded.set(index, id);
        } else this.#unreferenced.push(id);
      },
      (err: unknown) => {
        this.#uploadError ??= err;
      },
    );
    const tracked: Promise<void> = p.finally(() => {
      this.#inflight.delete(tracked);
      if (this.#uploading.get(index) === block) this.#uploading.delete(index);
    });
    this.#inflight.add(tracked);
    while (this.#inflight.size >= MAX_UPLOADS_IN_FLIGHT) await Promise.race(this.#inflight);
  }

  async #uploadAll(): Promise<void> {
    for (const index of [...this.#dirty.keys()]) await this.#startUpload(index);
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
    if (this.#uploadError !== undefined) throw this.#takeUploadError();
  }

  #takeUploadError(): unknown {
    const e = this.#uploadError;
    this.#uploadError = undefined;
    return e;
  }

  async truncate(size: number): Promise<void> {
    if (size < this.size) {
      for (const index of [...this.#dirty.keys()]) if (index * BLOCK_SIZE >= size) this.#dirty.delete(index);
      // Wait for uploads so none lands after the cut; their blocks are then released on commit.
      while (this.#inflight.size > 0) await Promise.all(this.#inflight);
      for (const [index, id] of [...this.#uploaded]) {
        if (index * BLOCK_SIZE >= size) {
          this.#uploaded.delete(index);
          this.#unreferenced.push(id);
        }
      }
      this.#truncatedTo = Math.min(this.#truncatedTo ?? Infinity, size);
      const tail = size % BLOCK_SIZE;
      if (tail !== 0) {
        // Zero the cut-off part of the last block so a later extension reads zeros, not old bytes.
        const index = Math.floor(size / BLOCK_SIZE);
        let block = this.#dirty.get(index);
        const inUpload = this.#uploading.get(index);
        if (block === undefined && inUpload !== undefined) {
          block = Buffer.from(inUpload);
          this.#dirty.set(index, block);
        }
        if (block === undefined) {
          const id = this.#committedId(index);
          if (id !== undefined) {
            block = Buffer.from(await this.#block(id));
            this.#dirty.set(index, block);
          }
        }
        if (block !== undefined && tail < block.length) block.fill(0, tail);
      }
    }
    this.size = size;
    this.#changed = true;
  }

  /** Stages every buffered byte and commits block map + size to the inode. */
  flush(): Promise<void> {
    const run = this.#commitChain.then(() => this.#flushNow());
    this.#commitChain = run.catch(() => {});
    return run;
  }

  async #flushNow(): Promise<void> {
    if (!this.#changed) return;
    await this.#uploadAll();
    const uploaded = new Map(this.#uploaded);
    const truncatedTo = this.#truncatedTo;
    const size = this.size;
    const unreferenced = this.#unreferenced.splice(0);
    const now = Date.now();
    let rec: InodeRecord;
    try {
      rec = await this.commit((r) => {
        const free = [...unreferenced];
        if (truncatedTo !== undefined) {
          for (const [k, id] of Object.entries(r.blocks)) {
            if (Number(k) * BLOCK_SIZE >= truncatedTo && !uploaded.has(Number(k))) {
              free.push(id);
              delete r.blocks[k];
            }
          }
        }
        const added: string[] = [];
        for (const [index, id] of uploaded) {
          const old = r.blocks[String(index)];
          if (old === id) continue;
          if (old !== undefined) free.push(old);
          r.blocks[String(index)] = id;
          added.push(id);
        }
        r.size = size;
        r.mtimeMs = now;
        r.ctimeMs = now;
        return { blocks: added, free };
      });
    } catch (err) {
      this.#unreferenced.unshift(...unreferenced);
      throw err;
    }
    for (const index of uploaded.keys()) this.#uploaded.delete(index);
    if (this.#truncatedTo === truncatedTo) this.#truncatedTo = undefined;
    this.rec = rec;
    this.#changed = this.#dirty.size > 0 || this.#uploaded.size > 0 || this.#inflight.size > 0 || this.size !== rec.size;
  }

  /** Block ids of the committed record, for deleting a file's data. */
  committedBlockIds(): string[] {
    return Object.values(this.rec.blocks);
  }
}

/*
 * A dirty block is a buffer of at most BLOCK_SIZE bytes; whatever lies past its length reads as zeros.
 * Small files so never cost a whole block of memory (nor of zero-filling).
 */

/** A new block buffer's length for `needed` bytes: whole 64 KiB steps, at most a block. */
function bufferLength(needed: number): number {
  return Math.min(BLOCK_SIZE, Math.max(64 * 1024, Math.ceil(needed / (64 * 1024)) * 64 * 1024));
}

/** `block` grown to hold `needed` bytes (doubling, so a file written in small pieces copies little). */
function grown(block: Buffer, needed: number): Buffer {
  const out = Buffer.alloc(Math.min(BLOCK_SIZE, Math.max(bufferLength(needed), 2 * block.length)));
  block.copy(out);
  return out;
}

/** The first `length` bytes of `block`, zero-padded if it is shorter. */
function exactly(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  block.copy(out, 0, 0, Math.min(length, block.length));
  return out;
}

/** Copies `length` bytes from `start` of a block into `buf` at `at`; past the block's end, zeros. */
function copyOut(block: Buffer, buf: Buffer, at: number, start: number, length: number): void {
  const end = Math.min(start + length, block.length);
  if (end > start) block.copy(buf, at, start, end);
  if (end < start + length) buf.fill(0, at + Math.max(0, end - start), at + length);
}
