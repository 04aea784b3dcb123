import { Writable } from "node:stream";
import { writeTo } from "./io.js";

/**
 * A line longer than this is cut and prefixed in pieces: `@*` output is meant for humans, and a partial
 * line is held in memory until its newline comes.
 */
const MAX_LINE_BYTES = 64 * 1024;

/**
 * Prefixes every line written to it with `n1: ` and forwards it, as pdsh does for `@*`. Several
 * prefixers share one target; whole lines are written at once so lines of different nodes never mix.
 */
export class LinePrefixer extends Writable {
  #partial: Buffer = Buffer.alloc(0);

  constructor(
    private readonly prefix: string,
    private readonly target: Writable,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    let data = this.#partial.length === 0 ? chunk : Buffer.concat([this.#partial, chunk]);
    const lines: Buffer[] = [];
    let newline = data.indexOf(10);
    while (newline !== -1) {
      lines.push(data.subarray(0, newline + 1));
      data = data.subarray(newline + 1);
      newline = data.indexOf(10);
    }
    while (data.length > MAX_LINE_BYTES) {
      lines.push(Buffer.concat([data.subarray(0, MAX_LINE_BYTES), Buffer.from("\n")]));
      data = data.subarray(MAX_LINE_BYTES);
    }
    this.#partial = Buffer.from(data);
    this.#emit(lines).then(() => callback(), callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    const rest = this.#partial.length === 0 ? [] : [Buffer.concat([this.#partial, Buffer.from("\n")])];
    this.#partial = Buffer.alloc(0);
    this.#emit(rest).then(() => callback(), callback);
  }

  async #emit(lines: readonly Buffer[]): Promise<void> {
    if (lines.length === 0) return;
    const prefix = Buffer.from(this.prefix);
    await writeTo(this.target, Buffer.concat(lines.flatMap((line) => [prefix, line])));
  }
}
