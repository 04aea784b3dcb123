import type { Accounts, Executor } from "./executor.js";
import type { TerminalSpec } from "./executor.js";
import type { IoTable } from "./io.js";
import type { JobInput } from "./terminal-input.js";
import type { JobTable } from "./jobs.js";
import type { ProcessGroup } from "./process-group.js";
import type { ShellState } from "./shell-state.js";
import type { Stmt } from "./syntax.js";

/** Where a statement runs: its variables, its streams, its job, and whether a failure may trip `set -e`. */
export interface ExecContext {
  readonly state: ShellState;
  readonly io: IoTable;
  readonly group: ProcessGroup;
  /** Inside an `if`/`while` condition or left of `&&`/`||`: `set -e` does not apply. */
  readonly condition: boolean;
  /** The source text the statements were parsed from (job listings quote it). */
  readonly source: string;
}

/** What the evaluator's parts (pipelines, simple commands, builtins) need from the shell. */
export interface ShellRuntime {
  readonly executor: Executor;
  readonly jobs: JobTable;
  readonly home: string;
  readonly shellPid: number;
  readonly interactive: boolean;
  /** The cluster's users (the account builtins); undefined where there are none (local tests). */
  readonly accounts: Accounts | undefined;
  runStmts(stmts: readonly Stmt[], ctx: ExecContext): Promise<number>;
  runStmt(stmt: Stmt, ctx: ExecContext): Promise<number>;
  /** Parses and runs source text in `ctx` (used by `source` and `eval`). */
  runSource(src: string, ctx: ExecContext): Promise<number>;
  /** Prints `oneos: <message>` to the context's stderr. */
  printError(ctx: ExecContext, message: string): Promise<void>;
  /** The command history (for `history`); empty when not interactive. */
  history(): readonly string[];
  /** Signals a PID that no job of this shell owns; rejects when it cannot. */
  killPid(pid: number, signal: string): Promise<void>;
  /** The processes of the job in the foreground (Ctrl-C goes to them). */
  setForeground(group: ProcessGroup | null): void;
  /** Waits for `work` unless Ctrl-Z stops the foreground job first. */
  waitInForeground<T>(work: Promise<T>): Promise<T | "stopped" | "detached">;
  /** Gives the job the foreground and (interactive) the keyboard; returns what restores the previous. */
  takeTerminal(group: ProcessGroup, input: JobInput | undefined): () => void;
  /** A PTY-backed terminal for a foreground command wholly on the terminal, or undefined. */
  terminalFor(io: IoTable, ctx: ExecContext): { spec: TerminalSpec; release(): void } | undefined;
}
