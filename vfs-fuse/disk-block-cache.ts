import { mkdir, open, rename, rm, writeFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { LruMap } from "./lru.js";

/**
 * The node's on-disk block cache: one file per immutable block id, LRU-evicted within `capacityBytes`.
 * Blocks never change once written, so the cache never needs invalidation. It starts empty: a file
 * left by an earlier run may be half-written, and re-reading from JetStream is always right.
 */
export class DiskBlockCache {
  /** Block id → its size in bytes. */
  readonly #lru: LruMap<string, number>;
  readonly #pending = new Set<Promise<unknown>>();
  #puts = 0;

  private constructor(
    readonly dir: string,
    capacityBytes: number,
  ) {
    this.#lru = new LruMap<string, number>(capacityBytes, (id) => this.#track(unlink(join(this.dir, id)).catch(() => {})));
  }

  static async open(dir: string, capacityBytes: number): Promise<DiskBlockCache> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return new DiskBlockCache(dir, capacityBytes);
  }

  get bytes(): number {
    return this.#lru.bytes;
  }

  /** A block's bytes: one read of its known size (readFile would stat first and read until EOF). */
  async get(id: string): Promise<Buffer | undefined> {
    const bytes = this.#lru.get(id);
    if (bytes === undefined) return undefined;
    try {
      const f = await open(join(this.dir, id), "r");
      try {
        const data = Buffer.allocUnsafe(bytes);
        const { bytesRead } = await f.read(data, 0, bytes, 0);
        if (bytesRead !== bytes) throw new Error(`block ${id}: ${bytesRead} of ${bytes} bytes`);
        return data;
      } finally {
        await f.close();
      }
    } catch {
      this.#lru.delete(id);
      return undefined;
    }
  }

  async put(id: string, data: Uint8Array): Promise<void> {
    if (this.#lru.has(id) || data.length > this.#lru.capacityBytes) return;
    // Written aside and renamed in: two puts of one block never leave a reader a half-written file.
    const aside = join(this.dir, `${id}.${++this.#puts}.part`);
    try {
      await writeFile(aside, data);
      await rename(aside, join(this.dir, id));
    } catch (err) {
      await unlink(aside).catch(() => {});
      throw err;
    }
    this.#lru.set(id, data.length, data.length);
  }

  /** Takes over a block file written elsewhere on the same file system (a stored write-back block). */
  async adopt(id: string, path: string, bytes: number): Promise<void> {
    if (this.#lru.has(id) || bytes > this.#lru.capacityBytes) {
      await unlink(path).catch(() => {});
      return;
    }
    try {
      await rename(path, join(this.dir, id));
      this.#lru.set(id, bytes, bytes);
    } catch {
      await unlink(path).catch(() => {});
    }
  }

  delete(id: string): void {
    if (this.#lru.delete(id)) this.#track(unlink(join(this.dir, id)).catch(() => {}));
  }

  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  async close(): Promise<void> {
    await Promise.all(this.#pending);
  }
}
