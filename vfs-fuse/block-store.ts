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

/**
 * Longest a node waits for a peer to serve a block from its cache before it reads JetStream instead:
 * a peer slower than this is slower than the store.
 */
const PEER_BLOCK_TIMEOUT_MS = 1_000;

/** Asks `node` for a block it holds; undefined when it has none (or does not answer). */
export type PeerBlockSource = (node: string, id: string, timeoutMs: number) => Promise<Buffer | undefined>;

/** A block id as `newBlockId` makes them (what a peer may be asked for). */
export const BLOCK_ID = /^[A-Za-z0-9_-]{22}$/;

/** A fresh, unique, immutable block id (128 random bits, key-alphabet safe). */
export function newBlockId(): string {
  return randomBytes(16).toString("base64url");
}

/**
 * Reads immutable blocks from a KV bucket through two cache levels (memory, then local disk), after
 * the blocks this node wrote and still stages; a block this node lacks is asked first of the peer
 * that wrote it (its cache holds it: a cooperative cache), then of JetStream. Because a block id is
 * never reused, a cached block is never stale, whoever holds it. Writes go through the write-back
 * (write-back.ts).
 */
export class BlockStore {
  /** Blocks leave memory for the disk cache (a no-op for those read from it): most never do. */
  readonly #memory = new LruMap<string, Buffer>(MEMORY_BLOCK_CACHE_BYTES, (id, data) => this.#track(this.disk.put(id, data).catch(() => {})));
  readonly #loading = new Map<string, Promise<Buffer>>();
  readonly #pending = new Set<Promise<unknown>>();

  constructor(
    private readonly kv: KV,
    private readonly disk: DiskBlockCache,
    private readonly opTimeoutMs: number,
    /** Blocks written on this node and not yet (or only just) stored: the write-back's. */
    private readonly staged: (id: string) => Promise<Buffer | undefined> = async () => undefined,
    /** Other nodes' caches (peer-service.ts); none: JetStream only. */
    private readonly peers?: PeerBlockSource,
  ) {}

  /** A block; `holder`: a peer that may cache it (the node that wrote it), asked before JetStream. */
  get(id: string, holder?: string): Promise<Buffer> {
    const hit = this.#memory.get(id);
    if (hit !== undefined) return Promise.resolve(hit);
    let p = this.#loading.get(id);
    if (p === undefined) {
      p = this.#load(id, holder).finally(() => this.#loading.delete(id));
      this.#loading.set(id, p);
    }
    return p;
  }

  /**
   * Keeps a small block this node just stored (it travelled in the journal, never in a file of its
   * own): in memory, and on disk once it leaves memory, since peers ask the writer for what it wrote
   * (the cooperative cache).
   */
  remember(id: string, data: Buffer): void {
    this.#keep(id, data);
  }

  /** A block no inode points at any more: out of memory and off disk (eviction would write it back). */
  forget(id: string): void {
    this.#memory.delete(id);
    this.disk.delete(id);
  }

  /** Starts loading a block without waiting (readahead). */
  prefetch(id: string, holder?: string): void {
    if (this.#memory.has(id) || this.#loading.has(id)) return;
    this.#track(this.get(id, holder).catch(() => {}));
  }

  /** A block this node holds (memory, staged, disk cache), for a peer that asks; never fetched. */
  async cached(id: string): Promise<Buffer | undefined> {
    return this.#memory.get(id) ?? (await this.#onThisNode(id));
  }

  async #onThisNode(id: string): Promise<Buffer | undefined> {
    return (await this.staged(id)) ?? (await this.disk.get(id));
  }

  /**
   * A block fetched from elsewhere: in memory now, on disk when it leaves memory. Writing every block
   * to disk at once cost a file (open, write, close, rename) per small file a node created or read.
   */
  #keep(id: string, data: Buffer): Buffer {
    this.#memory.set(id, data, data.length);
    return data;
  }

  async #load(id: string, holder: string | undefined): Promise<Buffer> {
    const local = await this.#onThisNode(id);
    if (local !== undefined) {
      this.#memory.set(id, local, local.length);
      return local;
    }
    const fromPeer = holder === undefined || this.peers === undefined ? undefined : await this.peers(holder, id, PEER_BLOCK_TIMEOUT_MS);
    if (fromPeer !== undefined) return this.#keep(id, fromPeer);
    // A direct get may reach a follower that has not applied the put yet: retry briefly.
    for (let attempt = 0; ; attempt++) {
      const e = await withTimeout(`get block ${id}`, this.opTimeoutMs, () => this.kv.get(id));
      if (e !== null && e.operation === "PUT") return this.#keep(id, Buffer.from(e.value.buffer, e.value.byteOffset, e.value.length));
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
