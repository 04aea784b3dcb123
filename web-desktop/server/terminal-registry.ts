import { ApiError } from "./api-error.js";
import { MAX_TERMINALS } from "./limits.js";
import { ShellTerminal, type ShellTerminalOptions } from "./shell-terminal.js";

/** Every terminal the desktop runs, by id; each belongs to the login session that opened it. */
export class TerminalRegistry {
  readonly #terminals = new Map<string, ShellTerminal>();
  readonly #spawn: Omit<ShellTerminalOptions, "cols" | "rows" | "owner" | "onGone">;

  constructor(spawn: Omit<ShellTerminalOptions, "cols" | "rows" | "owner" | "onGone">) {
    this.#spawn = spawn;
  }

  /** The owner's terminal with this id, or null (unknown, exited, or someone else's). */
  find(id: string, owner: string): ShellTerminal | null {
    const t = this.#terminals.get(id);
    return t !== undefined && t.owner === owner ? t : null;
  }

  /**
   * Starts a shell for `owner` (a login session id). `env` is added to the shell's environment: the
   * login's `ONEOS_SESSION`, so the shell runs as the logged-in user.
   */
  open(owner: string, size: { cols: number; rows: number }, env: Readonly<Record<string, string>> = {}): ShellTerminal {
    if (this.#terminals.size >= MAX_TERMINALS) {
      throw new ApiError(429, "EAGAIN", `at most ${MAX_TERMINALS} terminals at once: close one first`);
    }
    const terminal = new ShellTerminal({
      ...this.#spawn,
      env: { ...this.#spawn.env, ...env },
      cols: size.cols,
      rows: size.rows,
      owner,
      onGone: (t) => this.#terminals.delete(t.id),
    });
    this.#terminals.set(terminal.id, terminal);
    return terminal;
  }

  /** Hangs up every terminal of a login that ended (logout, expiry): its shells go with it. */
  closeOwnedBy(owner: string): void {
    for (const t of [...this.#terminals.values()]) if (t.owner === owner) t.close();
  }

  get size(): number {
    return this.#terminals.size;
  }

  close(): void {
    for (const t of [...this.#terminals.values()]) t.close();
  }
}
