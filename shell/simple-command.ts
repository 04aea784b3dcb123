import { LaunchError, type InputSpec, type OutputSpec, type Placement } from "./executor.js";
import type { ExecContext, ShellRuntime } from "./context.js";
import type { Builtin } from "./builtins/builtin.js";
import { ReturnRequest } from "./control-flow.js";
import type { Expander } from "./expand.js";
import { endStream, openInput, openOutput, type IoTable, type OpenedInput, type OpenedOutput } from "./io.js";
import { LinePrefixer } from "./line-prefixer.js";
import { placementOf } from "./placement.js";
import { planRedirects, type RedirectPlan } from "./redirect-plan.js";
import type { CallExpr, Redirect, Stmt } from "./syntax.js";

/** What a simple command needs beyond the runtime: builtins, functions and word expansion. */
export interface SimpleCommandServices {
  readonly runtime: ShellRuntime;
  builtin(name: string): Builtin | undefined;
  expander(ctx: ExecContext): { expander: Expander; lastSubstitutionStatus(): number | null };
}

/**
 * Runs `[@place] [NAME=value]... word... [redirections]`: a function, a builtin, or a program launched
 * through the executor (always a program when a placement is given: `@n2 echo` runs n2's echo).
 */
export async function runSimpleCommand(
  services: SimpleCommandServices,
  call: CallExpr,
  redirs: readonly Redirect[],
  ctx: ExecContext,
): Promise<number> {
  const started = { value: false };
  try {
    return await simpleCommand(services, call, redirs, ctx, started);
  } catch (err: unknown) {
    // Failed before anything took over its pipe ends (an expansion or redirection error): close them.
    if (!started.value) await closePipes(services.runtime, ctx.io);
    throw err;
  }
}

async function simpleCommand(
  services: SimpleCommandServices,
  call: CallExpr,
  redirs: readonly Redirect[],
  ctx: ExecContext,
  started: { value: boolean },
): Promise<number> {
  const shell = services.runtime;
  const placement = placementOf(call.Args[0]);
  const words = placement === null ? call.Args : call.Args.slice(1);
  const { expander, lastSubstitutionStatus } = services.expander(ctx);

  const assignments = new Map<string, string>();
  for (const assign of call.Assigns) {
    if (assign.Name === null) continue;
    const name = assign.Name.Value;
    const value = assign.Value === null ? "" : await expander.string(assign.Value);
    assignments.set(name, assign.Append ? (ctx.state.get(name) ?? "") + value : value);
  }
  const argv = await expander.fields(words);
  const name = argv[0];

  started.value = true;
  if (name === undefined) {
    if (placement !== null) {
      await closePipes(shell, ctx.io);
      await shell.printError(ctx, `${placementText(placement)}: missing command`);
      return 2;
    }
    for (const [key, value] of assignments) ctx.state.set(key, value);
    try {
      if (redirs.length > 0) {
        const plan = await planRedirects(redirs, ctx.io, { expander, executor: shell.executor, cwd: ctx.state.cwd, compound: true });
        plan.release();
      }
    } finally {
      await closePipes(shell, ctx.io);
    }
    return lastSubstitutionStatus() ?? 0;
  }

  if (placement === null) {
    const fn = ctx.state.functions.get(name);
    if (fn !== undefined) return runFunction(services, fn, argv, assignments, redirs, ctx, expander);
    const builtin = services.builtin(name);
    if (builtin !== undefined) return runBuiltin(shell, builtin, argv, assignments, redirs, ctx, expander);
  }

  let plan: RedirectPlan;
  try {
    plan = await planRedirects(redirs, ctx.io, { expander, executor: shell.executor, cwd: ctx.state.cwd, compound: false });
  } catch (err: unknown) {
    await closePipes(shell, ctx.io);
    throw err;
  }
  try {
    const env = ctx.state.environment(assignments);
    if (placement?.kind === "all") return await runEverywhere(shell, argv, env, plan.io, ctx);
    return await launchAndWait(shell, argv, env, placement ?? { kind: "auto" }, plan.io, ctx);
  } finally {
    plan.release();
  }
}

function placementText(placement: Placement | { kind: "all" }): string {
  switch (placement.kind) {
    case "all":
      return "@*";
    case "auto":
      return "";
    case "node":
      return `@${placement.node}`;
    case "label":
      return `@${placement.key}=${placement.value}`;
  }
}

async function launchAndWait(
  shell: ShellRuntime,
  argv: readonly string[],
  env: Record<string, string>,
  placement: Placement,
  io: IoTable,
  ctx: ExecContext,
): Promise<number> {
  let handle;
  const terminal = shell.terminalFor(io, ctx);
  try {
    handle = await shell.executor.launch({
      argv,
      env,
      cwd: ctx.state.cwd,
      umask: ctx.state.umask,
      placement,
      stdin: io.stdin,
      stdout: io.stdout,
      stderr: stderrSpec(io),
      ...(terminal !== undefined ? { tty: terminal.spec } : {}),
    });
  } catch (err: unknown) {
    terminal?.release();
    await closePipes(shell, io);
    if (!(err instanceof LaunchError)) throw err;
    return reportLaunchError(shell, ctx, argv[0] ?? "", err);
  }
  ctx.group.add(handle);
  try {
    const status = await handle.wait();
    if (status.message !== undefined) await shell.printError(ctx, status.message);
    return status.status;
  } finally {
    terminal?.release();
    ctx.group.remove(handle);
  }
}

/** `2>&1` travels as `{ kind: "stdout" }` so the executor gives both one destination. */
function stderrSpec(io: IoTable): OutputSpec {
  return io.stderr === io.stdout && io.stdout.kind !== "null" ? { kind: "stdout" } : io.stderr;
}

async function reportLaunchError(shell: ShellRuntime, ctx: ExecContext, name: string, err: LaunchError): Promise<number> {
  switch (err.code) {
    case "ENOCMD":
      await shell.printError(ctx, `${name}: command not found`);
      return 127;
    case "ENONODE":
      await shell.printError(ctx, err.message.replace(/^oneos: /, ""));
      return 2;
    case "EACCES":
      await shell.printError(ctx, err.message.replace(/^oneos: /, ""));
      return 126;
    default:
      await shell.printError(ctx, err.message.replace(/^oneos: /, ""));
      return 1;
  }
}

/** `@* cmd`: once per node, concurrently, every output line prefixed with `node: `. */
async function runEverywhere(
  shell: ShellRuntime,
  argv: readonly string[],
  env: Record<string, string>,
  io: IoTable,
  ctx: ExecContext,
): Promise<number> {
  const nodes = await shell.executor.nodes();
  const out = await openOutput(shell.executor, io.stdout);
  const err = io.stderr === io.stdout ? out : await openOutput(shell.executor, io.stderr);
  // Standard input cannot be split between nodes; like pdsh, only a file redirection is given to each.
  const stdin: InputSpec = io.stdin.kind === "file" ? io.stdin : { kind: "null" };
  try {
    const statuses = await Promise.all(
      nodes.map(async (node) => {
        const prefixedOut = new LinePrefixer(`${node}: `, out.stream);
        const prefixedErr = new LinePrefixer(`${node}: `, err.stream);
        try {
          return await launchAndWait(
            shell,
            argv,
            env,
            { kind: "node", node },
            { stdin, stdout: { kind: "writable", stream: prefixedOut }, stderr: { kind: "writable", stream: prefixedErr } },
            ctx,
          );
        } finally {
          await Promise.all([endStream(prefixedOut), endStream(prefixedErr)]);
        }
      }),
    );
    return Math.max(0, ...statuses);
  } finally {
    await out.release();
    if (err !== out) await err.release();
    if (io.stdin.kind === "pipe") shell.executor.pipeReader(io.stdin.pipe).destroy();
  }
}

async function runBuiltin(
  shell: ShellRuntime,
  builtin: Builtin,
  argv: readonly string[],
  assignments: ReadonlyMap<string, string>,
  redirs: readonly Redirect[],
  ctx: ExecContext,
  expander: Expander,
): Promise<number> {
  let plan: RedirectPlan;
  let stdin: OpenedInput | undefined;
  let stdout: OpenedOutput | undefined;
  let stderr: OpenedOutput;
  try {
    plan = await planRedirects(redirs, ctx.io, { expander, executor: shell.executor, cwd: ctx.state.cwd, compound: false });
    stdin = await openInput(shell.executor, plan.io.stdin);
    stdout = await openOutput(shell.executor, plan.io.stdout);
    stderr = plan.io.stderr === plan.io.stdout ? stdout : await openOutput(shell.executor, plan.io.stderr);
  } catch (err: unknown) {
    // Close what was opened, and the pipe ends nothing took over (each pipe end is opened once).
    stdin?.release();
    await stdout?.release();
    await closePipes(shell, {
      stdin: stdin === undefined ? ctx.io.stdin : { kind: "null" },
      stdout: stdout === undefined ? ctx.io.stdout : { kind: "null" },
      stderr: ctx.io.stderr === ctx.io.stdout ? { kind: "null" } : ctx.io.stderr,
    });
    await shell.printError(ctx, describeOpenError(err));
    return 1;
  }
  const restore = withTemporaryVars(ctx, assignments);
  try {
    return await builtin({ argv, stdin: stdin.stream, stdout: stdout.stream, stderr: stderr.stream, ctx, shell });
  } finally {
    restore();
    stdin.release();
    await stdout.release();
    if (stderr !== stdout) await stderr.release();
    plan.release();
  }
}

async function runFunction(
  services: SimpleCommandServices,
  body: Stmt,
  argv: readonly string[],
  assignments: ReadonlyMap<string, string>,
  redirs: readonly Redirect[],
  ctx: ExecContext,
  expander: Expander,
): Promise<number> {
  const shell = services.runtime;
  let plan: RedirectPlan;
  try {
    plan = await planRedirects(redirs, ctx.io, { expander, executor: shell.executor, cwd: ctx.state.cwd, compound: true });
  } catch (err: unknown) {
    await closePipes(shell, ctx.io);
    await shell.printError(ctx, describeOpenError(err));
    return 1;
  }
  const shellSide = shellSideStreams(shell, plan.io);
  const saved = ctx.state.positional;
  ctx.state.positional = argv.slice(1);
  const restore = withTemporaryVars(ctx, assignments);
  try {
    return await shell.runStmt(body, { ...ctx, io: shellSide.io });
  } catch (err: unknown) {
    if (err instanceof ReturnRequest) return err.status;
    throw err;
  } finally {
    restore();
    ctx.state.positional = saved;
    await shellSide.release();
    plan.release();
  }
}

/**
 * A compound command (function body, subshell, loop) inside a pipeline runs in the shell: its pipe ends
 * become the shell-side streams of the pipe, closed when it is finished.
 */
export function shellSideStreams(shell: ShellRuntime, io: IoTable): { io: IoTable; release(): Promise<void> } {
  const closers: (() => Promise<void>)[] = [];
  let stdin = io.stdin;
  let stdout = io.stdout;
  let stderr = io.stderr;
  if (stdin.kind === "pipe") {
    const stream = shell.executor.pipeReader(stdin.pipe);
    closers.push(async () => void stream.destroy());
    stdin = { kind: "readable", stream };
  }
  const shared = stderr === stdout;
  if (stdout.kind === "pipe") {
    const stream = shell.executor.pipeWriter(stdout.pipe);
    closers.push(() => endStream(stream));
    stdout = { kind: "writable", stream };
  }
  if (shared) stderr = stdout;
  else if (stderr.kind === "pipe") {
    const stream = shell.executor.pipeWriter(stderr.pipe);
    closers.push(() => endStream(stream));
    stderr = { kind: "writable", stream };
  }
  return {
    io: { stdin, stdout, stderr },
    release: async () => {
      for (const close of closers) await close();
    },
  };
}

/** A stage that will never use its pipe ends must still close them, or its neighbours wait forever. */
export async function closePipes(shell: ShellRuntime, io: IoTable): Promise<void> {
  if (io.stdin.kind === "pipe") shell.executor.pipeReader(io.stdin.pipe).destroy();
  if (io.stdout.kind === "pipe") await endStream(shell.executor.pipeWriter(io.stdout.pipe));
  if (io.stderr.kind === "pipe" && io.stderr !== io.stdout) await endStream(shell.executor.pipeWriter(io.stderr.pipe));
}

function withTemporaryVars(ctx: ExecContext, assignments: ReadonlyMap<string, string>): () => void {
  const saved = new Map<string, string | undefined>();
  for (const [name, value] of assignments) {
    saved.set(name, ctx.state.get(name));
    ctx.state.set(name, value);
  }
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) ctx.state.vars.delete(name);
      else ctx.state.set(name, value);
    }
  };
}

function describeOpenError(err: unknown): string {
  if (err instanceof Error && "path" in err && "code" in err) {
    const code = String(err.code);
    const reason = code === "ENOENT" ? "No such file or directory" : code === "EACCES" ? "Permission denied" : code === "EISDIR" ? "Is a directory" : err.message;
    return `${String(err.path)}: ${reason}`;
  }
  return err instanceof Error ? err.message : String(err);
}
