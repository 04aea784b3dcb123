/**
 * The last `limit` bytes a terminal printed, replayed to a browser that re-attaches (after a page
 * reload), so the screen comes back as it was rather than blank.
 */
export class ReplayBuffer {
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get size(): number {
    return this.#size;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size > this.#limit) {
      const first = this.#chunks[0]!;
      const excess = this.#size - this.#limit;
      if (first.length <= excess) {
        this.#chunks.shift();
        this.#size -= first.length;
      } else {
        this.#chunks[0] = first.subarray(excess);
        this.#size -= excess;
      }
    }
  }

  contents(): Buffer {
    const all = Buffer.concat(this.#chunks);
    this.#chunks = all.length > 0 ? [all] : [];
    return all;
  }
}
