import { mkdir, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface FsBenchOptions {
  /** Bytes of the big sequential file (default 1 GiB). */
  readonly sizeBytes?: number;
  /** Number of small files (default 1,000). */
  readonly smallFiles?: number;
  /** Size of each small file (default 128 KiB). */
  readonly smallFileBytes?: number;
  /** Skip the big file (phases: "seq"), the small files ("small"), or neither. */
  readonly phases?: readonly ("seq" | "small")[];
  /** Run between the write and the read phases (e.g. to drop caches or switch to another node's mount). */
  readonly beforeRead?: () => Promise<void>;
  /** Directory to read back from (another node's view of `dir`); default `dir`. */
  readonly readDir?: string;
  /** Read everything a second time (warm cache figures). */
  readonly reread?: boolean;
}

export interface FsBenchResult {
  readonly seqWriteMBps?: number;
  readonly seqReadMBps?: number;
  readonly createsPerSec?: number;
  readonly smallReadsPerSec?: number;
  readonly statsPerSec?: number;
  readonly seqRereadMBps?: number;
  readonly smallRereadsPerSec?: number;
}

/** I/O size of the sequential phases. */
const IO_BYTES = 1024 * 1024;
/** Small-file operations kept in flight, like a parallel `tar x` or `make -j` would. */
const SMALL_FILE_CONCURRENCY = 8;

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

/**
 * `oneos fs bench [DIR]`: a big file written and read in 1 MiB I/O, then many small files written,
 * read and stat'ed. Only async fs calls: the caller may be the process serving the mount.
 */
export async function fsBench(dir: string, options: FsBenchOptions = {}): Promise<FsBenchResult> {
  const size = options.sizeBytes ?? 1024 ** 3;
  const n = options.smallFiles ?? 1000;
  const small = options.smallFileBytes ?? 128 * 1024;
  const phases = options.phases ?? ["seq", "small"];
  const readDir = options.readDir ?? dir;
  const work = join(dir, `.fs-bench-${process.pid}-${Date.now()}`);
  const readWork = join(readDir, work.slice(dir.length));
  await mkdir(work, { recursive: true });
  const out: { -readonly [K in keyof FsBenchResult]: FsBenchResult[K] } = {};
  try {
    if (phases.includes("seq")) {
      const chunk = Buffer.alloc(IO_BYTES, 0x5a);
      const big = join(work, "big");
      const t = performance.now();
      const w = await open(big, "w");
      for (let off = 0; off < size; off += IO_BYTES) await w.write(chunk, 0, Math.min(IO_BYTES, size - off), off);
      await w.close();
      out.seqWriteMBps = mbps(size, performance.now() - t);
      await options.beforeRead?.();
      const buf = Buffer.alloc(IO_BYTES);
      const readAll = async (): Promise<number> => {
        const t0 = performance.now();
        const r = await open(join(readWork, "big"), "r");
        let total = 0;
        for (;;) {
          const { bytesRead } = await r.read(buf, 0, IO_BYTES, total);
          if (bytesRead === 0) break;
          total += bytesRead;
        }
        await r.close();
        if (total !== size) throw new Error(`read ${total} bytes of ${size}`);
        return mbps(total, performance.now() - t0);
      };
      out.seqReadMBps = await readAll();
      if (options.reread === true) out.seqRereadMBps = await readAll();
      await rm(big);
    }
    if (phases.includes("small")) {
      const data = Buffer.alloc(small, 0x42);
      const names = Array.from({ length: n }, (_, i) => `f${i}`);
      const pool = async (fn: (name: string) => Promise<unknown>): Promise<number> => {
        const t = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: SMALL_FILE_CONCURRENCY }, async () => {
            while (next < names.length) await fn(names[next++]!);
          }),
        );
        return n / ((performance.now() - t) / 1000);
      };
      out.createsPerSec = await pool((f) => writeFile(join(work, f), data, { flag: "wx" }));
      if (!phases.includes("seq")) await options.beforeRead?.();
      out.smallReadsPerSec = await pool((f) => readFile(join(readWork, f)));
      if (options.reread === true) out.smallRereadsPerSec = await pool((f) => readFile(join(readWork, f)));
      out.statsPerSec = await pool((f) => stat(join(readWork, f)));
    }
  } catch (err) {
    // Report what failed, not a follow-on failure of the clean-up.
    await rm(work, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
  await rm(work, { recursive: true, force: true });
  return out;
}
