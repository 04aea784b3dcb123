import type { ProcessHandle } from "./executor.js";

/**
 * The processes started on behalf of one job, wherever they run: Ctrl-C, `kill %n`, `bg` signal them
 * all. Pipeline stages, subshells and `$(...)` inside a job share its group.
 */
export class ProcessGroup {
  readonly #handles = new Set<ProcessHandle>();
  readonly #onLaunch: ((handle: ProcessHandle) => void)[] = [];

  add(handle: ProcessHandle): void {
    this.#handles.add(handle);
    for (const listener of this.#onLaunch.splice(0)) listener(handle);
  }

  /** Called when the process has ended: it no longer receives the group's signals. */
  remove(handle: ProcessHandle): void {
    this.#handles.delete(handle);
  }

  get handles(): readonly ProcessHandle[] {
    return [...this.#handles];
  }

  /** Resolves with the next process launched in this group. */
  nextLaunch(): Promise<ProcessHandle> {
    return new Promise((resolve) => this.#onLaunch.push(resolve));
  }

  async signal(signal: string): Promise<void> {
    await Promise.all(this.handles.map((h) => h.signal(signal).catch(() => {})));
  }
}
