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

/** A fresh, unique, immutable block id (128 random bits, key-alphabet safe). */
export function newBlockId(): string {
  return randomBytes(16).toString("base64url");
}

/**
 * Reads immutable blocks from a KV bucket through two cache levels (memory, then local disk), after
 * the blocks this node wrote and still stages. Because a block id is never reused, a cached block is
 * never stale. Writes go through the write-back (write-back.ts).
 */
export class BlockStore {
  readonly #memory = new LruMap<string, Buffer>(MEMORY_BLOCK_CACHE_BYTES);
  readonly #loading = new Map<string, Promise<Buffer>>();
  readonly #pending = new Set<Promise<unknown>>();

  constructor(
    private readonly kv: KV,
    private readonly disk: DiskBlockCache,
    private readonly opTimeoutMs: number,
    /** Blocks written on this node and not yet (or only just) stored: the write-back's. */
    private readonly staged: (id: string) => Promise<Buffer | undefined> = async () => undefined,
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

  /**
   * Keeps a small block this node just stored in memory (it never had a file of its own on this
   * node's disk; a read after it leaves memory fetches it from JetStream).
   */
  remember(id: string, data: Buffer): void {
    this.#memory.set(id, data, data.length);
  }

  /** Starts loading a block without waiting (readahead). */
  prefetch(id: string): void {
    if (this.#memory.has(id) || this.#loading.has(id)) return;
    this.#track(this.get(id).catch(() => {}));
  }

  async #load(id: string): Promise<Buffer> {
    const local = (await this.staged(id)) ?? (await this.disk.get(id));
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

  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  async close(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
    this.#memory.clear();
  }
}
