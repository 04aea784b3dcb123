import { ArithmeticError, evalArith } from "./arith.js";
import { builtins } from "./builtins/index.js";
import type { Builtin } from "./builtins/builtin.js";
import type { ExecContext, ShellRuntime } from "./context.js";
import { ExitRequest, InterruptRequest, LoopControl, ReturnRequest } from "./control-flow.js";
import type { Accounts, Executor, TerminalSpec } from "./executor.js";
import { Expander, ExpansionError } from "./expand.js";
import { CaptureSink, openOutput, writeTo, type IoTable } from "./io.js";
import { JobTable } from "./jobs.js";
import type { JobInput, TerminalInput } from "./terminal-input.js";
import type { Writable } from "node:stream";
import { exportListing } from "./builtins/variables.js";
import { pipelineStages, runPipeline } from "./pipeline.js";
import { ProcessGroup } from "./process-group.js";
import { planRedirects, RedirectError } from "./redirect-plan.js";
import { ShellState } from "./shell-state.js";
import { runSimpleCommand, type SimpleCommandServices } from "./simple-command.js";
import {
  isNode,
  nodeType,
  Op,
  parse,
  ShellSyntaxError,
  sourceOf,
  type CaseClause,
  type DeclClause,
  type ForClause,
  type IfClause,
  type Stmt,
  type WhileClause,
} from "./syntax.js";

export interface InterpreterOptions {
  readonly executor: Executor;
  /** Initial variables; all of them are exported. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly home: string;
  /** The shell's own streams (the terminal, or a caller's buffers). */
  readonly io: IoTable;
  readonly interactive: boolean;
  /** `$$`; defaults to this process's PID. */
  readonly shellPid?: number;
  readonly positional?: readonly string[];
  readonly history?: () => readonly string[];
  readonly killPid?: (pid: number, signal: string) => Promise<void>;
  readonly accounts?: Accounts;
  /** The interactive terminal: keyboard routing and what a foreground command's PTY is told. */
  readonly terminal?: TerminalControl;
  /** Builtins the embedder adds (the CLI's `oneos`); they may not replace the shell's own. */
  readonly builtins?: ReadonlyMap<string, Builtin>;
}

/** The user's terminal as the interactive front end lends it to the interpreter. */
export interface TerminalControl {
  readonly input: TerminalInput;
  /** `$TERM`, the window size now, and its changes. */
  describe(): { term: string; cols: number; rows: number; output: Writable; onResize(listener: (cols: number, rows: number) => void): () => void };
}

/** The result of running one command line. */
export interface RunResult {
  readonly status: number;
  /** True when `exit` was run: the shell should end with `status`. */
  readonly exit: boolean;
  /** True when Ctrl-Z stopped it: it is a job in the table now, and its input must stay open. */
  readonly stopped?: boolean;
}

/**
 * The evaluator: walks mvdan-sh statements, expanding words and launching simple commands through the
 * executor. One instance is one shell (its variables, functions, jobs).
 */
export class Interpreter implements ShellRuntime {
  readonly executor: Executor;
  readonly jobs = new JobTable();
  readonly home: string;
  readonly shellPid: number;
  readonly interactive: boolean;
  readonly accounts: Accounts | undefined;
  readonly state: ShellState;
  readonly #io: IoTable;
  readonly #options: InterpreterOptions;
  readonly #builtins: ReadonlyMap<string, Builtin>;
  #foreground: ProcessGroup | null = null;
  /** The keyboard input of the command line in the foreground (interactive only). */
  #foregroundInput: JobInput | null = null;
  /** Who is waiting on the foreground job and must let go of it when Ctrl-Z stops it (innermost last). */
  readonly #stopWaiters: ((why: "stopped" | "detached") => void)[] = [];
  /** The foreground group Ctrl-C was sent to: the rest of its command line is abandoned, as in bash. */
  #interrupted: ProcessGroup | null = null;

  constructor(options: InterpreterOptions) {
    this.#options = options;
    this.#builtins = options.builtins === undefined ? builtins : new Map([...options.builtins, ...builtins]);
    this.executor = options.executor;
    this.home = options.home;
    this.shellPid = options.shellPid ?? process.pid;
    this.interactive = options.interactive;
    this.accounts = options.accounts;
    this.#io = options.io;
    this.state = new ShellState({
      vars: new Map(Object.entries(options.env)),
      exported: new Set(Object.keys(options.env)),
      cwd: options.cwd,
      positional: [...(options.positional ?? [])],
    });
    this.state.set("PWD", options.cwd);
    this.state.exported.add("PWD");
    if (this.state.get("HOME") === undefined) this.state.set("HOME", options.home);
  }

  /**
   * Parses and runs one command line (or script) at the top level. With `input` (interactive), that is
   * the line's keyboard input; Ctrl-Z then turns the line into a stopped job and returns at once.
   */
  async run(src: string, overrides: Partial<IoTable> = {}, input?: JobInput): Promise<RunResult> {
    const group = new ProcessGroup();
    this.#foreground = group;
    this.#foregroundInput = input ?? null;
    const io: IoTable = { ...this.#io, ...overrides };
    const ctx: ExecContext = { state: this.state, io, group, condition: false, source: src };
    const running = this.#runTopLevel(src, ctx).finally(() => {
      if (this.#foreground === group) {
        this.#foreground = null;
        this.#foregroundInput = null;
      }
      if (this.#interrupted === group) this.#interrupted = null;
    });
    const outcome = await this.waitInForeground(running);
    if (outcome === "detached") {
      this.state.lastStatus = 0;
      return { status: 0, exit: false };
    }
    if (outcome !== "stopped") return outcome;
    const job = this.jobs.add(src, group, running.then((r) => r.status));
    job.state = "Stopped";
    if (input !== undefined) job.input = input;
    await this.#notice(`\n${this.jobs.describe(job)}\n`);
    this.state.lastStatus = 148; // 128 + SIGTSTP, as bash reports a stopped job
    return { status: 148, exit: false, stopped: true };
  }

  async #runTopLevel(src: string, ctx: ExecContext): Promise<RunResult> {
    try {
      const status = await this.runSource(src, ctx);
      return { status, exit: false };
    } catch (err: unknown) {
      if (err instanceof ExitRequest) return { status: err.status, exit: true };
      if (err instanceof InterruptRequest) {
        this.state.lastStatus = 130;
        return { status: 130, exit: false };
      }
      if (err instanceof LoopControl || err instanceof ReturnRequest) return { status: this.state.lastStatus, exit: false };
      throw err;
    }
  }

  /** Waits for `work` unless Ctrl-Z stops (or Ctrl-] d detaches) the foreground job first. */
  async waitInForeground<T>(work: Promise<T>): Promise<T | "stopped" | "detached"> {
    let stop: (why: "stopped" | "detached") => void = () => undefined;
    const stopped = new Promise<"stopped" | "detached">((resolve) => (stop = resolve));
    this.#stopWaiters.push(stop);
    try {
      return await Promise.race([work, stopped]);
    } finally {
      this.#stopWaiters.splice(this.#stopWaiters.indexOf(stop), 1);
    }
  }

  /** Sends a signal to every process of the foreground job (Ctrl-C, Ctrl-\, Ctrl-Z). */
  async interrupt(signal = "SIGINT"): Promise<void> {
    if (signal === "SIGINT" || signal === "SIGQUIT") this.#interrupted = this.#foreground;
    await this.#foreground?.signal(signal);
    if (signal === "SIGTSTP") this.#stopWaiters.at(-1)?.("stopped");
  }

  /** SIGHUP to the foreground job and every job (stopped ones are continued so they see it). */
  async hangUp(): Promise<void> {
    const groups = [this.#foreground, ...this.jobs.list().map((j) => j.group)].filter((g): g is ProcessGroup => g !== null);
    await Promise.all(groups.map(async (g) => {
      await g.signal("SIGHUP");
      await g.signal("SIGCONT");
    }));
  }

  /**
   * Ctrl-] d: lets go of the foreground job's terminal processes; they run on as sessions (listed by
   * `oneos sessions`, re-entered with `oneos attach PID`) and the prompt comes back.
   */
  async detach(): Promise<void> {
    const handles = (this.#foreground?.handles ?? []).filter((h) => h.detach !== undefined);
    if (handles.length === 0) return;
    await Promise.all(handles.map((h) => h.detach!().catch(() => undefined)));
    const where = handles.map((h) => `${h.pid} on ${h.node}`).join(", ");
    await this.#notice(`\r\n[detached: ${where} — re-enter with: oneos attach ${handles[0]!.pid}]\n`);
    this.#stopWaiters.at(-1)?.("detached");
  }

  /** Routes the keyboard to a job being brought to the foreground (`fg`); undefined when not interactive. */
  takeTerminal(group: ProcessGroup, input: JobInput | undefined): () => void {
    const previous = { group: this.#foreground, input: this.#foregroundInput };
    this.#foreground = group;
    const terminal = this.#options.terminal;
    if (terminal !== undefined && input !== undefined) {
      this.#foregroundInput = input;
      terminal.input.attach(input);
    }
    return () => {
      this.#foreground = previous.group;
      this.#foregroundInput = previous.input;
      if (terminal !== undefined && previous.input !== null) terminal.input.attach(previous.input);
    };
  }

  /**
   * The user's terminal for a foreground command whose stdin, stdout and stderr are all the terminal:
   * it gets a PTY on its node and the keyboard passes through raw until `release()`.
   */
  terminalFor(io: IoTable, ctx: ExecContext): { spec: TerminalSpec; release(): void } | undefined {
    const terminal = this.#options.terminal;
    const input = this.#foregroundInput;
    if (terminal === undefined || input === null || ctx.group !== this.#foreground) return undefined;
    const onTerminal =
      io.stdin.kind === "readable" &&
      io.stdin.stream === input.stream &&
      io.stdout === this.#io.stdout &&
      io.stderr === this.#io.stderr;
    if (!onTerminal) return undefined;
    const described = terminal.describe();
    input.raw = true;
    return {
      spec: { ...described, input: input.stream },
      release: () => {
        input.raw = false;
      },
    };
  }

  async #notice(text: string): Promise<void> {
    const out = await openOutput(this.executor, this.#io.stderr);
    await writeTo(out.stream, text);
    await out.release();
  }

  /** `Done` lines for jobs that finished since the last prompt. */
  finishedJobNotices(): string[] {
    return this.jobs.reap();
  }

  async runSource(src: string, ctx: ExecContext): Promise<number> {
    let file;
    try {
      file = parse(src);
    } catch (err: unknown) {
      if (!(err instanceof ShellSyntaxError)) throw err;
      await this.printError(ctx, `syntax error: ${err.message}`);
      ctx.state.lastStatus = 2;
      return 2;
    }
    return this.runStmts(file.Stmts, { ...ctx, source: src });
  }

  async runStmts(stmts: readonly Stmt[], ctx: ExecContext): Promise<number> {
    let status = 0;
    for (const stmt of stmts) {
      status = await this.runStmt(stmt, ctx);
      if (this.#interrupted !== null && this.#interrupted === ctx.group) throw new InterruptRequest();
    }
    return status;
  }

  async runStmt(stmt: Stmt, ctx: ExecContext): Promise<number> {
    if (stmt.Background) return this.#background(stmt, ctx);
    let status: number;
    try {
      status = await this.#statement(stmt, stmt.Negated ? { ...ctx, condition: true } : ctx);
    } catch (err: unknown) {
      if (!(err instanceof ExpansionError || err instanceof RedirectError || err instanceof ArithmeticError)) throw err;
      await this.printError(ctx, err.message);
      status = 1;
    }
    if (stmt.Negated) status = status === 0 ? 1 : 0;
    ctx.state.lastStatus = status;
    if (status !== 0 && ctx.state.options.errexit && !ctx.condition && !stmt.Negated && tripsErrexit(stmt)) {
      throw new ExitRequest(status);
    }
    return status;
  }

  async printError(ctx: ExecContext, message: string): Promise<void> {
    const text = `oneos: ${message}\n`;
    const spec = ctx.io.stderr;
    try {
      // A pipe's write end is opened once, by the stage that owns it; a message about a stage that
      // could not start (`nosuch |& cat`) goes to the shell's own stderr instead.
      const out = await openOutput(this.executor, spec.kind === "pipe" ? this.#io.stderr : spec);
      await writeTo(out.stream, text);
      await out.release();
    } catch {
      // Nowhere to report that stderr is unwritable.
    }
  }

  history(): readonly string[] {
    return this.#options.history?.() ?? [];
  }

  async killPid(pid: number, signal: string): Promise<void> {
    if (this.#options.killPid === undefined) throw new Error(`(${pid}) - No such process`);
    await this.#options.killPid(pid, signal);
  }

  setForeground(group: ProcessGroup | null): void {
    this.#foreground = group;
  }

  get foreground(): ProcessGroup | null {
    return this.#foreground;
  }

  async #statement(stmt: Stmt, ctx: ExecContext): Promise<number> {
    const cmd = stmt.Cmd;
    if (isNode(cmd, "CallExpr")) return runSimpleCommand(this.#services, cmd, stmt.Redirs, ctx);
    if (isNode(cmd, "BinaryCmd") && (cmd.Op === Op.Pipe || cmd.Op === Op.PipeAll)) {
      return runPipeline(this, pipelineStages(cmd), ctx);
    }
    if (isNode(cmd, "BinaryCmd")) {
      const left = await this.runStmt(cmd.X, { ...ctx, condition: true });
      const runRight = cmd.Op === Op.AndStmt ? left === 0 : left !== 0;
      return runRight ? this.runStmt(cmd.Y, ctx) : left;
    }
    // A compound command: its redirections apply to everything inside it.
    const expander = this.#expander(ctx).expander;
    const plan = await planRedirects(stmt.Redirs, ctx.io, {
      expander,
      executor: this.executor,
      cwd: ctx.state.cwd,
      compound: true,
    });
    try {
      return await this.#compound(cmd, { ...ctx, io: plan.io });
    } finally {
      plan.release();
    }
  }

  async #compound(cmd: unknown, ctx: ExecContext): Promise<number> {
    if (cmd === null) return 0;
    if (isNode(cmd, "Subshell")) {
      try {
        return await this.runStmts(cmd.Stmts, { ...ctx, state: ctx.state.clone() });
      } catch (err: unknown) {
        if (err instanceof ExitRequest) return err.status;
        throw err;
      }
    }
    if (isNode(cmd, "Block")) return this.runStmts(cmd.Stmts, ctx);
    if (isNode(cmd, "IfClause")) return this.#if(cmd, ctx);
    if (isNode(cmd, "WhileClause")) return this.#while(cmd, ctx);
    if (isNode(cmd, "ForClause")) return this.#for(cmd, ctx);
    if (isNode(cmd, "CaseClause")) return this.#case(cmd, ctx);
    if (isNode(cmd, "FuncDecl")) {
      ctx.state.functions.set(cmd.Name.Value, cmd.Body);
      return 0;
    }
    if (isNode(cmd, "DeclClause")) return this.#declare(cmd, ctx);
    if (isNode(cmd, "ArithmCmd")) {
      const value = await evalArith(cmd.X, this.#expander(ctx).expander.arithScope());
      return value === 0 ? 1 : 0;
    }
    await this.printError(ctx, `${nodeType(cmd)}: not supported by this shell`);
    return 2;
  }

  async #if(clause: IfClause, ctx: ExecContext): Promise<number> {
    let branch: IfClause | null = clause;
    while (branch !== null) {
      // `else` is an IfClause without conditions.
      if (branch.Cond.length === 0) return this.runStmts(branch.Then, ctx);
      if ((await this.runStmts(branch.Cond, { ...ctx, condition: true })) === 0) return this.runStmts(branch.Then, ctx);
      branch = branch.Else;
    }
    return 0;
  }

  async #while(clause: WhileClause, ctx: ExecContext): Promise<number> {
    let status = 0;
    for (;;) {
      const cond = await this.runStmts(clause.Cond, { ...ctx, condition: true });
      if ((cond === 0) === clause.Until) break;
      const step = await this.#loopBody(clause.Do, ctx);
      status = step.status;
      if (step.stop) break;
    }
    return status;
  }

  async #for(clause: ForClause, ctx: ExecContext): Promise<number> {
    const expander = this.#expander(ctx).expander;
    const loop = clause.Loop;
    if (isNode(loop, "WordIter")) {
      const items = loop.Items.length === 0 ? [...ctx.state.positional] : await expander.fields(loop.Items);
      let status = 0;
      for (const item of items) {
        ctx.state.set(loop.Name.Value, item);
        const step = await this.#loopBody(clause.Do, ctx);
        status = step.status;
        if (step.stop) break;
      }
      return status;
    }
    if (nodeType(loop) === "CStyleLoop") {
      const c = loop as { Init: object | null; Cond: object | null; Post: object | null };
      const scope = expander.arithScope();
      let status = 0;
      if (c.Init !== null) await evalArith(c.Init, scope);
      while (c.Cond === null || (await evalArith(c.Cond, scope)) !== 0) {
        const step = await this.#loopBody(clause.Do, ctx);
        status = step.status;
        if (step.stop) break;
        if (c.Post !== null) await evalArith(c.Post, scope);
      }
      return status;
    }
    await this.printError(ctx, `for: unsupported loop (${nodeType(loop)})`);
    return 2;
  }

  /** One pass of a loop body; `stop` after `break`. */
  async #loopBody(body: readonly Stmt[], ctx: ExecContext): Promise<{ status: number; stop: boolean }> {
    try {
      return { status: await this.runStmts(body, ctx), stop: false };
    } catch (err: unknown) {
      if (!(err instanceof LoopControl)) throw err;
      if (err.levels > 1) throw new LoopControl(err.kind, err.levels - 1);
      return { status: 0, stop: err.kind === "break" };
    }
  }

  async #case(clause: CaseClause, ctx: ExecContext): Promise<number> {
    const expander = this.#expander(ctx).expander;
    const subject = await expander.string(clause.Word);
    let status = 0;
    let fallthrough = false;
    for (const item of clause.Items) {
      let matched = fallthrough;
      for (const pattern of item.Patterns) {
        if (matched) break;
        matched = await expander.matches(pattern, subject);
      }
      if (!matched) continue;
      status = await this.runStmts(item.Stmts, ctx);
      if (item.Op === Op.Fallthrough) fallthrough = true;
      else if (item.Op === Op.Resume) fallthrough = false;
      else return status;
    }
    return status;
  }

  /** `export`, `local`, `declare`, `readonly` (parsed as declarations in bash mode). */
  async #declare(decl: DeclClause, ctx: ExecContext): Promise<number> {
    const variant = decl.Variant.Value;
    const expander = this.#expander(ctx).expander;
    if (variant === "export" && decl.Args.length === 0) {
      const out = await openOutput(this.executor, ctx.io.stdout);
      await writeTo(out.stream, exportListing(ctx.state));
      await out.release();
      return 0;
    }
    for (const assign of decl.Args) {
      let name: string;
      if (assign.Naked && assign.Name === null) {
        if (assign.Value === null) continue;
        name = await expander.string(assign.Value);
        const eq = name.indexOf("=");
        if (eq > 0) {
          ctx.state.set(name.slice(0, eq), name.slice(eq + 1));
          name = name.slice(0, eq);
        }
      } else if (assign.Name !== null) {
        name = assign.Name.Value;
        if (!assign.Naked) {
          const value = assign.Value === null ? "" : await expander.string(assign.Value);
          ctx.state.set(name, assign.Append ? (ctx.state.get(name) ?? "") + value : value);
        }
      } else continue;
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        await this.printError(ctx, `${variant}: \`${name}': not a valid identifier`);
        return 1;
      }
      if (variant === "export") ctx.state.exported.add(name);
      else if (assign.Naked && ctx.state.get(name) === undefined) ctx.state.set(name, "");
    }
    return 0;
  }

  /** `cmd &`: a job running on its own copy of the shell, with no terminal input. */
  async #background(stmt: Stmt, ctx: ExecContext): Promise<number> {
    const group = new ProcessGroup();
    const jobCtx: ExecContext = {
      state: ctx.state.clone(),
      io: { ...ctx.io, stdin: { kind: "null" } },
      group,
      condition: true,
      source: ctx.source,
    };
    const run = this.#statement(stmt, jobCtx).catch((err: unknown) => {
      if (err instanceof ExitRequest) return err.status;
      if (err instanceof LoopControl || err instanceof ReturnRequest) return 0;
      return this.printError(ctx, String(err)).then(() => 1);
    });
    const command = sourceOf(ctx.source, stmt).replace(/\s*&\s*$/, "");
    const job = this.jobs.add(command, group, run);
    const first = await Promise.race([group.nextLaunch(), job.done.then(() => null)]);
    ctx.state.lastBackgroundPid = first?.pid ?? null;
    job.firstPid = first?.pid;
    if (this.interactive && first !== null) {
      const out = await openOutput(this.executor, this.#io.stderr);
      await writeTo(out.stream, `[${job.id}] ${first.pid}\n`);
      await out.release();
    }
    ctx.state.lastStatus = 0;
    return 0;
  }

  /** Word expansion in `ctx`, with `$(...)` run as a subshell of it. */
  #expander(ctx: ExecContext): { expander: Expander; lastSubstitutionStatus(): number | null } {
    let last: number | null = null;
    const expander = new Expander({
      state: ctx.state,
      fs: this.executor.fs,
      home: this.home,
      shellPid: this.shellPid,
      commandSubstitution: async (stmts) => {
        const capture = new CaptureSink();
        const sub: ExecContext = {
          ...ctx,
          state: ctx.state.clone(),
          io: { stdin: ctx.io.stdin, stdout: { kind: "writable", stream: capture }, stderr: ctx.io.stderr },
          condition: false,
        };
        try {
          last = await this.runStmts(stmts, sub);
        } catch (err: unknown) {
          if (!(err instanceof ExitRequest)) throw err;
          last = err.status;
        }
        ctx.state.lastStatus = last;
        return capture.text();
      },
    });
    return { expander, lastSubstitutionStatus: () => last };
  }

  readonly #services: SimpleCommandServices = {
    runtime: this,
    builtin: (name) => this.#builtins.get(name),
    expander: (ctx) => this.#expander(ctx),
  };
}

/** Statements whose failure ends the shell under `set -e` (compound commands fail through their parts). */
function tripsErrexit(stmt: Stmt): boolean {
  const cmd = stmt.Cmd;
  if (isNode(cmd, "BinaryCmd")) return cmd.Op === Op.Pipe || cmd.Op === Op.PipeAll;
  return isNode(cmd, "CallExpr") || isNode(cmd, "Subshell");
}
