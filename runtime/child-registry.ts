import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** How often the registry file is rewritten at most: spawns can come hundreds a second. */
const FLUSH_DELAY_MS = 100;

/**
 * The host PIDs of this runtime's children, kept in a file. Children run in their own process groups
 * and outlive a runtime that is hard-killed; the file lets `oneos cluster kill` take them down with
 * their node (as a machine loss would) and lets the next runtime of the node reap leftovers.
 */
export class ChildRegistry {
  readonly path: string;
  #pids = new Set<number>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  add(hostPid: number): void {
    this.#pids.add(hostPid);
    this.#schedule();
  }

  delete(hostPid: number): void {
    this.#pids.delete(hostPid);
    this.#schedule();
  }

  #schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, FLUSH_DELAY_MS);
  }

  async flush(): Promise<void> {
    const snapshot = JSON.stringify([...this.#pids]);
    this.#writing = this.#writing.then(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      await writeFile(`${this.path}.tmp`, snapshot);
      await rename(`${this.path}.tmp`, this.path);
    }).catch(() => undefined);
    await this.#writing;
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}

/** SIGKILLs the process groups listed in a registry file left by a dead runtime; returns how many. */
export async function reapChildren(path: string): Promise<number> {
  let pids: unknown;
  try {
    pids = JSON.parse(await readFile(path, "utf8"));
  } catch {
    return 0;
  }
  if (!Array.isArray(pids)) return 0;
  let killed = 0;
  for (const pid of pids) {
    if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 1) continue;
    try {
      process.kill(-pid, "SIGKILL");
      killed++;
    } catch {
      // already gone
    }
  }
  await writeFile(path, "[]").catch(() => undefined);
  return killed;
}
