/**
 * The oneos shell: a POSIX-style shell (grammar parsed by mvdan-sh) whose simple commands run wherever
 * an `Executor` puts them, with `@node` / `@key=value` / `@*` placement prefixes.
 *
 * @example
 * ```ts
 * const status = await runShell({
 *   executor: new LocalExecutor({ nodes: ["n1", "n2", "n3"] }),
 *   env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/root" },
 *   cwd: process.cwd(), home: "/root", user: "root",
 *   command: "seq 1 5 | @n2 sort -rn | @n3 head -3",
 *   interactive: false, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr,
 * });
 * ```
 */
import type { Readable, Writable } from "node:stream";
import type { Builtin } from "./builtins/builtin.js";
import type { Accounts, Executor } from "./executor.js";
import { Interpreter } from "./interpreter.js";
import { runRepl } from "./repl.js";

export type { AccountInfo, Accounts, Executor, ExitStatus, LaunchRequest, Placement, ProcessHandle, ShellFs } from "./executor.js";
export { LaunchError } from "./executor.js";
export type { Builtin, BuiltinCall } from "./builtins/builtin.js";
export { LocalExecutor, type LocalExecutorOptions } from "./local-executor.js";
export { ClusterExecutor, type ClusterExecutorOptions } from "./cluster-executor.js";
export { NodeFs } from "./node-fs.js";
export { DETACH_PREFIX } from "./terminal-input.js";
export { commandsOf, placementProblem, placementSpec } from "./placement.js";

export interface ShellOptions {
  readonly executor: Executor;
  /** The environment the shell starts with; every variable in it is exported. */
  readonly env: Readonly<Record<string, string>>;
  /** Absolute starting directory. */
  readonly cwd: string;
  /** For `~` and a bare `cd` when `HOME` is not in `env`. */
  readonly home: string;
  /** Shown in the interactive prompt (`user@oneos:~/dir$ `). */
  readonly user: string;
  /** `oneos shell -c '<command>'`: run this and return its status (not interactive). */
  readonly command?: string;
  /** Positional parameters (`$1`...) for `command`. */
  readonly args?: readonly string[];
  /** Line editing, prompt, job notices, Ctrl-C/Ctrl-D handling (ignored when `command` is given). */
  readonly interactive: boolean;
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Where interactive history is kept across sessions (one line per command). */
  readonly historyFile?: string;
  /** Signals a cluster-wide PID that is not one of this shell's jobs (`kill 1234`). */
  readonly killPid?: (pid: number, signal: string) => Promise<void>;
  /** `$$`; defaults to this process's PID. */
  readonly shellPid?: number;
  /** The cluster's users, for `whoami`, `id`, `useradd`, `userdel`, `passwd`. */
  readonly accounts?: Accounts;
  /** Builtins the embedder adds (the CLI's `oneos`). */
  readonly builtins?: ReadonlyMap<string, Builtin>;
}

/**
 * Runs the shell until it exits and returns its exit status: the status of `command` (like `sh -c`),
 * the status of the script read from a non-interactive stdin, or the status `exit` was given.
 */
export async function runShell(options: ShellOptions): Promise<number> {
  if (options.command === undefined && options.interactive) return runRepl(options);
  let history: string[] = [];
  const interpreter = new Interpreter({
    executor: options.executor,
    env: options.env,
    cwd: options.cwd,
    home: options.home,
    interactive: false,
    io: {
      stdin: { kind: "readable", stream: options.stdin },
      stdout: { kind: "writable", stream: options.stdout },
      stderr: { kind: "writable", stream: options.stderr },
    },
    ...(options.shellPid === undefined ? {} : { shellPid: options.shellPid }),
    ...(options.killPid === undefined ? {} : { killPid: options.killPid }),
    ...(options.accounts === undefined ? {} : { accounts: options.accounts }),
    ...(options.builtins === undefined ? {} : { builtins: options.builtins }),
    ...(options.args === undefined ? {} : { positional: options.args }),
    history: () => history,
  });
  const src = options.command ?? (await readAll(options.stdin));
  history = [src];
  const result = await interpreter.run(src);
  return result.status;
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString("utf8");
}
