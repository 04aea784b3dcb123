import type { Readable, Writable } from "node:stream";
import type { PlacementSpec } from "../scheduler/index.js";

/**
 * The contract between the shell's interpreter and whatever runs its commands.
 *
 * The interpreter (grammar, expansion, control flow, builtins, jobs) never talks to NATS: it asks an
 * `Executor` to launch simple commands with stdio described by specs. `ClusterExecutor` carries them to
 * node runtimes; `LocalExecutor` runs them with child_process for the interpreter's own unit tests.
 */

/**
 * Where a simple command runs: `@n2 cmd`, `@gpu=1 cmd`, or no prefix. (`@* cmd` is the interpreter's:
 * it asks `nodes()` and launches once per node with `kind: "node"`, prefixing each output line.)
 */
export type Placement = (
  | { readonly kind: "auto" }
  | { readonly kind: "node"; readonly node: string }
  | { readonly kind: "label"; readonly key: string; readonly value: string }
) & {
  /**
   * The scheduler's whole request behind the prefix: label sets and negation, resources
   * (`@{cpu=2,mem=512M}`). Executors that only know node and label read `kind`.
   */
  readonly spec?: PlacementSpec;
  /** Why the prefix is invalid (`@{cpu=abc}`): the command is not run. */
  readonly invalid?: string;
};

/** One end of a pipe between two commands of a pipeline; the executor decides how bytes travel. */
export interface PipeHandle {
  readonly id: string;
}

/** Where a launched command's stdin comes from. Paths are absolute (the interpreter resolves them). */
export type InputSpec =
  | { readonly kind: "null" }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "pipe"; readonly pipe: PipeHandle }
  /** Bytes produced inside the shell: a here-document, a builtin earlier in the pipeline, the terminal. */
  | { readonly kind: "readable"; readonly stream: Readable };

/** Where a launched command's stdout or stderr goes. */
export type OutputSpec =
  | { readonly kind: "null" }
  | { readonly kind: "file"; readonly path: string; readonly append: boolean }
  | { readonly kind: "pipe"; readonly pipe: PipeHandle }
  /** A consumer inside the shell: the terminal, a `$(...)` capture, a builtin later in the pipeline. */
  | { readonly kind: "writable"; readonly stream: Writable }
  /** Only for stderr: the same destination as this command's stdout (`2>&1`). */
  | { readonly kind: "stdout" };

/**
 * The user's terminal, for a foreground command of an interactive shell: the command gets a real
 * pseudo-terminal on its node (as with `ssh -t`), its line discipline turns Ctrl-C into SIGINT there,
 * and raw-mode programs (vim, top, a REPL) work. While it runs, the shell passes keystrokes through.
 */
export interface TerminalSpec {
  /** `$TERM` of the user's terminal. */
  readonly term: string;
  readonly cols: number;
  readonly rows: number;
  /** Raw keystrokes. */
  readonly input: Readable;
  /** Where the pseudo-terminal's output goes (never ended by the executor). */
  readonly output: Writable;
  /** Subscribes to window-size changes; returns the unsubscribe function. */
  onResize(listener: (cols: number, rows: number) => void): () => void;
}

export interface LaunchRequest {
  readonly argv: readonly string[];
  /** The exported environment, already expanded. */
  readonly env: Readonly<Record<string, string>>;
  /** Absolute working directory. */
  readonly cwd: string;
  readonly umask: number;
  readonly placement: Placement;
  readonly stdin: InputSpec;
  readonly stdout: OutputSpec;
  readonly stderr: OutputSpec;
  /** When set, stdin, stdout and stderr are all this terminal (through a PTY on the node). */
  readonly tty?: TerminalSpec;
}

/** How a process ended, as `$?` sees it. */
export interface ExitStatus {
  /** 0–255; 128+n for a death by signal n, as bash reports it. */
  readonly status: number;
  /** Signal name (`SIGINT`) when the process died by a signal. */
  readonly signal?: string;
  /** Set when the process's node was lost or the process could not be followed; printed by the shell. */
  readonly message?: string;
}

export interface ProcessHandle {
  /** Cluster-wide PID. */
  readonly pid: number;
  /** Node the process runs on. */
  readonly node: string;
  /** Resolves when the process has exited AND every byte of its shell-side outputs has been delivered. */
  wait(): Promise<ExitStatus>;
  /** Sends a signal by name (`SIGINT`, `SIGTERM`, `SIGKILL`, `SIGSTOP`, `SIGCONT`, `SIGTSTP`...). */
  signal(signal: string): Promise<void>;
  /**
   * For a process on a terminal: lets go of it without hanging it up; it runs on as a session that
   * `oneos attach PID` re-enters. `wait()` then resolves only when it exits.
   */
  detach?(): Promise<void>;
}

/** Raised by `launch` when the command cannot start; the interpreter maps `code` to `$?`. */
export class LaunchError extends Error {
  override readonly name = "LaunchError";
  constructor(
    /** `ENOCMD` → 127 with `oneos: foo: command not found`; `ENONODE` → 2; `EACCES` → 126; other → 1. */
    readonly code: "ENOCMD" | "ENONODE" | "EACCES" | "ENOENT" | "EPLACE" | "EIO",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A cluster user as `id` shows them. */
export interface AccountInfo {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/**
 * The cluster's users, for the shell's account builtins (`whoami`, `id`, `useradd`, `userdel`,
 * `passwd`). Calls act in the shell's session: the cluster decides what the user may do.
 */
export interface Accounts {
  /** Who the shell is logged in as. */
  me(): AccountInfo;
  lookup(name: string): Promise<AccountInfo>;
  add(name: string, password: string | undefined): Promise<AccountInfo>;
  remove(name: string): Promise<void>;
  /** `old` is needed when a user changes their own password. */
  setPassword(name: string, password: string, old: string | undefined): Promise<void>;
}

/** The file-system view the shell itself needs (cd, globbing, builtins' redirections). */
export interface ShellFs {
  /** `null` when the path does not exist. */
  stat(path: string): Promise<{ readonly isDirectory: boolean } | null>;
  /** Entry names of a directory (no `.`/`..`); rejects when it is not a readable directory. */
  readdir(path: string): Promise<string[]>;
  /** Opens a file for a builtin's output redirection (`echo hi > f`). */
  openWrite(path: string, options: { readonly append: boolean }): Promise<Writable>;
  /** Opens a file for a builtin's input redirection. */
  openRead(path: string): Promise<Readable>;
}

export interface Executor {
  createPipe(): PipeHandle;
  /** The write end of a pipe as used inside the shell (a builtin or subshell feeding the next stage). */
  pipeWriter(pipe: PipeHandle): Writable;
  /** The read end of a pipe as used inside the shell. */
  pipeReader(pipe: PipeHandle): Readable;
  /** Starts a simple command; rejects with `LaunchError` when it cannot start. */
  launch(request: LaunchRequest): Promise<ProcessHandle>;
  /** Names of the nodes that can run commands now (for `@*` and error messages). */
  nodes(): Promise<string[]>;
  readonly fs: ShellFs;
}
