import { appendFile, readFile } from "node:fs/promises";
import type { Writable } from "node:stream";
import { createInterface, type Interface } from "node:readline";
import type { ShellOptions } from "./index.js";
import { Interpreter } from "./interpreter.js";
import { parse, ShellSyntaxError } from "./syntax.js";
import { TerminalInput } from "./terminal-input.js";

/** Lines of history kept in memory and loaded from the history file (bash's default HISTSIZE). */
const HISTORY_LIMIT = 1000;

/**
 * The interactive shell: a prompt with line editing and history (node:readline), `Done` notices before
 * each prompt, Ctrl-C clearing the line at the prompt and interrupting the foreground job otherwise,
 * Ctrl-D at an empty prompt leaving.
 */
export async function runRepl(options: ShellOptions): Promise<number> {
  const history = await loadHistory(options.historyFile);
  const input = new TerminalInput(options.stdin, options.stdout, {
    signal: (name) => void interpreter.interrupt(name),
    detach: () => void interpreter.detach(),
  });
  const screen = options.stdout as Writable & { columns?: number; rows?: number };
  const interpreter: Interpreter = new Interpreter({
    executor: options.executor,
    env: options.env,
    cwd: options.cwd,
    home: options.home,
    interactive: true,
    io: {
      stdin: { kind: "null" },
      stdout: { kind: "writable", stream: options.stdout },
      stderr: { kind: "writable", stream: options.stderr },
    },
    ...(options.shellPid === undefined ? {} : { shellPid: options.shellPid }),
    ...(options.killPid === undefined ? {} : { killPid: options.killPid }),
    ...(options.accounts === undefined ? {} : { accounts: options.accounts }),
    ...(options.builtins === undefined ? {} : { builtins: options.builtins }),
    history: () => history,
    terminal: {
      input,
      describe: () => ({
        term: options.env["TERM"] ?? "xterm-256color",
        cols: screen.columns || 80,
        rows: screen.rows || 24,
        output: options.stdout,
        onResize(listener) {
          const onResize = (): void => listener(screen.columns || 80, screen.rows || 24);
          options.stdout.on("resize", onResize);
          return () => options.stdout.off("resize", onResize);
        },
      }),
    },
  });

  // The terminal went away (window closed, connection dropped): hang up every job, as bash does.
  const onHangUp = (): void => {
    void interpreter.hangUp().finally(() => process.exit(129));
  };
  process.once("SIGHUP", onHangUp);
  // Keys come as bytes in raw mode, but between two prompts' readline interfaces (and around jobs) the
  // tty is cooked for a moment: a ^C, ^\ or ^Z typed then is a signal to the shell itself, whose default
  // would kill or stop it. An interactive shell survives them (as bash); a foreground job gets them.
  const onKeySignal = (signal: NodeJS.Signals): void => void interpreter.interrupt(signal).catch(() => undefined);
  const keySignals = ["SIGINT", "SIGQUIT", "SIGTSTP"] as const;
  for (const signal of keySignals) process.on(signal, onKeySignal);
  try {
    return await promptLoop(options, interpreter, input, history);
  } finally {
    process.off("SIGHUP", onHangUp);
    for (const signal of keySignals) process.off(signal, onKeySignal);
  }
}

async function promptLoop(options: ShellOptions, interpreter: Interpreter, input: TerminalInput, history: string[]): Promise<number> {
  for (;;) {
    for (const notice of interpreter.finishedJobNotices()) options.stdout.write(`${notice}\n`);
    const src = await readCommand(options, history, prompt(options, interpreter.state.cwd));
    if (src === null) {
      options.stdout.write("exit\n");
      return interpreter.state.lastStatus;
    }
    if (src.trim() === "") continue;
    history.push(src);
    if (history.length > HISTORY_LIMIT) history.splice(0, history.length - HISTORY_LIMIT);
    if (options.historyFile !== undefined) {
      await appendFile(options.historyFile, `${src.replace(/\n/g, " ")}\n`).catch(() => {});
    }
    const lineInput = input.begin();
    let result;
    try {
      result = await interpreter.run(src, { stdin: { kind: "readable", stream: lineInput.stream } }, lineInput);
    } finally {
      // A stopped job keeps its input for `fg`; otherwise the line's input ends with it.
      if (result?.stopped === true) input.detach();
      else input.end(lineInput);
    }
    if (result.exit) return result.status;
  }
}

function prompt(options: ShellOptions, cwd: string): string {
  const home = options.env["HOME"] ?? options.home;
  const dir = cwd === home ? "~" : cwd.startsWith(`${home}/`) ? `~${cwd.slice(home.length)}` : cwd;
  return `${options.user}@oneos:${dir}$ `;
}

/** Reads one complete command, asking for continuation lines (`> `) while the parser wants more. */
async function readCommand(options: ShellOptions, history: string[], firstPrompt: string): Promise<string | null> {
  let text = "";
  let promptText = firstPrompt;
  for (;;) {
    const line = await readLine(options, history, promptText);
    if (line === null) return text === "" ? null : text;
    if (line === "\x03") {
      // Ctrl-C: drop what was typed so far.
      text = "";
      promptText = firstPrompt;
      continue;
    }
    text = text === "" ? line : `${text}\n${line}`;
    try {
      parse(text);
      return text;
    } catch (err: unknown) {
      if (!(err instanceof ShellSyntaxError) || !err.incomplete) return text;
      promptText = "> ";
    }
  }
}

/** One edited line; null at Ctrl-D on an empty line, "\x03" for Ctrl-C. */
function readLine(options: ShellOptions, history: string[], promptText: string): Promise<string | null> {
  return new Promise((resolve) => {
    const terminal = (options.stdin as { isTTY?: boolean }).isTTY === true;
    const rl: Interface = createInterface({
      input: options.stdin,
      output: options.stdout,
      terminal,
      history: [...history].reverse(),
      historySize: HISTORY_LIMIT,
      removeHistoryDuplicates: true,
    });
    let settled = false;
    const finish = (value: string | null): void => {
      if (settled) return;
      settled = true;
      rl.close();
      resolve(value);
    };
    rl.on("SIGINT", () => {
      options.stdout.write("^C\n");
      finish("\x03");
    });
    rl.once("line", (line) => finish(line));
    rl.once("close", () => finish(null));
    rl.setPrompt(promptText);
    rl.prompt();
  });
}

async function loadHistory(file: string | undefined): Promise<string[]> {
  if (file === undefined) return [];
  const text = await readFile(file, "utf8").catch(() => "");
  return text.split("\n").filter((line) => line !== "").slice(-HISTORY_LIMIT);
}
