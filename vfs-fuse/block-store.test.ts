import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KV } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import { BLOCK_SIZE } from "./block-math.js";
import { BlockStore, MEMORY_BLOCK_CACHE_BYTES, newBlockId } from "./block-store.js";
import { DiskBlockCache } from "./disk-block-cache.js";

describe("BlockStore's caches", () => {
  it("keeps remembered blocks in memory only, and moves them to the disk cache as they leave memory", async () => {
    const dir = await mkdtemp(join(tmpdir(), "oneos-block-store-"));
    try {
      const disk = await DiskBlockCache.open(join(dir, "cache"), 1024 * BLOCK_SIZE);
      // No bucket: every block here is served from a cache or not at all.
      const store = new BlockStore({} as KV, disk, 1000);
      const count = MEMORY_BLOCK_CACHE_BYTES / BLOCK_SIZE + 2;
      const ids = Array.from({ length: count }, () => newBlockId());
      ids.forEach((id, i) => store.remember(id, Buffer.alloc(BLOCK_SIZE, i)));
      // The two oldest left memory for the disk; the newest never touched it.
      await store.close();
      expect((await disk.get(ids[0]!))?.equals(Buffer.alloc(BLOCK_SIZE, 0))).toBe(true);
      expect((await disk.get(ids[1]!))?.equals(Buffer.alloc(BLOCK_SIZE, 1))).toBe(true);
      expect(await disk.get(ids[count - 1]!)).toBeUndefined();
      expect(disk.bytes).toBe(2 * BLOCK_SIZE);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
