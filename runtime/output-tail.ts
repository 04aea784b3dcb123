/** How much of a process's output the runtime keeps for `oneos logs` and the desktop. */
export const TAIL_BYTES = 64 * 1024;

/** The last `limit` bytes written, in order: chunks are kept whole and dropped from the front. */
export class OutputTail {
  #chunks: Buffer[] = [];
  #bytes = 0;
  #total = 0;
  readonly #limit: number;

  constructor(limit = TAIL_BYTES) {
    this.#limit = limit;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    this.#total += chunk.length;
    while (this.#bytes - this.#chunks[0]!.length >= this.#limit) this.#bytes -= this.#chunks.shift()!.length;
  }

  /** The kept bytes (at most `limit`) and how many were written in all. */
  read(): { data: Buffer; total: number } {
    const all = Buffer.concat(this.#chunks);
    return { data: all.length > this.#limit ? all.subarray(all.length - this.#limit) : all, total: this.#total };
  }
}
