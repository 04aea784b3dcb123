import { randomBytes } from "node:crypto";
import type { KV } from "@nats-io/kv";
import { BLOCK_SIZE } from "./block-math.js";
import type { DiskBlockCache } from "./disk-block-cache.js";
import { FsError } from "./errors.js";
import { LruMap } from "./lru.js";
import { withTimeout } from "./with-timeout.js";

/** Largest block value: one block; the bucket refuses anything bigger. */
export const MAX_BLOCK_VALUE_BYTES = BLOCK_SIZE;
/**
 * Blocks kept in memory: enough for readahead (4 blocks) of a few concurrent readers plus the
 * re-reads FUSE makes of one block in 128 KiB pieces; the disk cache holds the rest.
 */
export const MEMORY_BLOCK_CACHE_BYTES = 64 * 1024 * 1024;

/** Extra attempts of a block put that timed out: a loaded cluster can take seconds to ack 1 MiB at R3. */
const PUT_RETRIES = 2;

/** A fresh, unique, immutable block id (128 random bits, key-alphabet safe). */
export function newBlockId(): string {
  return randomBytes(16).toString("base64url");
}

/**
 * Immutable blocks in a KV bucket with two cache levels (memory, then local disk). Because a block id
 * is never reused, a cached block is never stale.
 */
export class BlockStore {
  readonly #memory = new LruMap<string, Buffer>(MEMORY_BLOCK_CACHE_BYTES);
  readonly #loading = new Map<string, Promise<Buffer>>();
  readonly #pending = new Set<Promise<unknown>>();

  constructor(
    private readonly kv: KV,
    private readonly disk: DiskBlockCache,
    private readonly opTimeoutMs: number,
  ) {}

  get(id: string): Promise<Buffer> {
    const hit = this.#memory.get(id);
    if (hit !== undefined) return Promise.resolve(hit);
    let p = this.#loading.get(id);
    if (p === undefined) {
      p = this.#load(id).finally(() => this.#loading.delete(id));
      this.#loading.set(id, p);
    }
    return p;
  }

  /** Starts loading a block without waiting (readahead). */
  prefetch(id: string): void {
    if (this.#memory.has(id) || this.#loading.has(id)) return;
    this.#track(this.get(id).catch(() => {}));
  }

  async #load(id: string): Promise<Buffer> {
    const local = await this.disk.get(id);
    if (local !== undefined) {
      this.#memory.set(id, local, local.length);
      return local;
    }
    // A direct get may reach a follower that has not applied the put yet: retry briefly.
    for (let attempt = 0; ; attempt++) {
      const e = await withTimeout(`get block ${id}`, this.opTimeoutMs, () => this.kv.get(id));
      if (e !== null && e.operation === "PUT") {
        const data = Buffer.from(e.value.buffer, e.value.byteOffset, e.value.length);
        this.#memory.set(id, data, data.length);
        this.#track(this.disk.put(id, data).catch(() => {}));
        return data;
      }
      if (attempt >= 5) throw new FsError("EIO", `block ${id} is missing`);
      await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
    }
  }

  async put(data: Buffer): Promise<string> {
    const id = newBlockId();
    // A block id is unique, so a put that timed out (its ack lost in a busy cluster) is simply sent
    // again; nats.js's own 5 s publish timeout is lifted to ours.
    for (let attempt = 0; ; attempt++) {
      try {
        await withTimeout(`put block`, this.opTimeoutMs, () => this.kv.put(id, data, { timeout: this.opTimeoutMs }));
        break;
      } catch (err) {
        if (attempt >= PUT_RETRIES) throw err;
      }
    }
    this.#memory.set(id, data, data.length);
    this.#track(this.disk.put(id, data).catch(() => {}));
    return id;
  }

  /** Removes blocks no inode refers to any more; failures only leak space, so they are not fatal. */
  release(ids: readonly string[]): void {
    for (const id of ids) {
      this.#memory.delete(id);
      this.disk.delete(id);
      this.#track(withTimeout(`purge block`, this.opTimeoutMs, () => this.kv.purge(id)).catch(() => {}));
    }
  }

  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  async close(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
    this.#memory.clear();
  }
}
