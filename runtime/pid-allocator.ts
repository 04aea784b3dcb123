import type { KV } from "@nats-io/kv";
import { KernelError } from "../pseudokernel/index.js";

/** PIDs a runtime claims at once: one compare-and-set per block keeps spawns off the KV's critical path. */
const PID_BLOCK = 1000;
/** Cluster PIDs start here, so they never look like a node's own low PIDs (1, 2…). */
export const FIRST_PID = 1000;
const KEY = "next";

/**
 * Hands out cluster-wide unique PIDs: a runtime claims a block with compare-and-set on one KV key,
 * then serves PIDs from it locally.
 */
export class PidAllocator {
  #kv: KV;
  #next = 0;
  #end = 0;
  #start = 0;
  #claiming: Promise<void> | undefined;

  constructor(kv: KV) {
    this.#kv = kv;
  }

  /** The block PIDs are handed out from now, [from, to): only this runtime's processes have them. */
  block(): readonly [from: number, to: number] {
    return [this.#start, this.#end];
  }

  async allocate(): Promise<number> {
    while (this.#next >= this.#end) {
      this.#claiming ??= this.#claim().finally(() => (this.#claiming = undefined));
      await this.#claiming;
    }
    return this.#next++;
  }

  async #claim(): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const entry = await this.#kv.get(KEY);
      try {
        if (entry === null || entry.operation !== "PUT") {
          await this.#kv.create(KEY, String(FIRST_PID + PID_BLOCK));
          this.#next = FIRST_PID;
        } else {
          const start = Number(entry.string());
          if (!Number.isSafeInteger(start) || start < FIRST_PID) throw new KernelError("EIO", "corrupt pid counter");
          await this.#kv.update(KEY, String(start + PID_BLOCK), entry.revision);
          this.#next = start;
        }
        this.#start = this.#next;
        this.#end = this.#next + PID_BLOCK;
        return;
      } catch (error) {
        if (error instanceof KernelError) throw error;
        // another runtime claimed the block first: read again
        await new Promise((r) => setTimeout(r, Math.random() * 20));
      }
    }
    throw new KernelError("EIO", "could not claim a block of PIDs");
  }
}
