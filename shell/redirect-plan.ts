import { isAbsolute, resolve } from "node:path";
import { Readable } from "node:stream";
import type { Executor, InputSpec, OutputSpec } from "./executor.js";
import type { Expander } from "./expand.js";
import { endStream, type IoTable } from "./io.js";
import { isNode, Op, type Redirect, type Word } from "./syntax.js";

export class RedirectError extends Error {
  override readonly name = "RedirectError";
  readonly code = "EREDIR";
}

export interface RedirectPlan {
  readonly io: IoTable;
  /** Closes what the plan opened in the shell (compound commands' input files). */
  release(): void;
}

/**
 * Applies a statement's redirections, left to right, to the streams it inherits.
 *
 * For a simple command, files become `file` specs that the executor opens where the command runs. A
 * compound command (`{ a; b; } > f`) runs several commands against one redirection, so `>` truncates
 * the file once here and hands `append` specs down (each command then adds to the same file, as a shared
 * descriptor would), and `<` is opened once as a stream so commands read on from where the last stopped.
 */
export async function planRedirects(
  redirs: readonly Redirect[],
  inherited: IoTable,
  options: { expander: Expander; executor: Executor; cwd: string; compound: boolean },
): Promise<RedirectPlan> {
  let { stdin, stdout, stderr } = inherited;
  const opened: Readable[] = [];
  const path = async (word: Word): Promise<string> => {
    const text = await options.expander.string(word);
    if (text === "") throw new RedirectError("ambiguous redirect");
    return isAbsolute(text) ? text : resolve(options.cwd, text);
  };
  const output = async (word: Word, append: boolean): Promise<OutputSpec> => {
    const target = await path(word);
    if (options.compound && !append) {
      await endStream(await openOrFail(() => options.executor.fs.openWrite(target, { append: false }), target));
    }
    return { kind: "file", path: target, append: append || options.compound };
  };

  for (const redir of redirs) {
    const fd = redir.N === null ? null : Number(redir.N.Value);
    switch (redir.Op) {
      case Op.RdrOut:
      case Op.ClbOut:
      case Op.AppOut: {
        const spec = await output(redir.Word, redir.Op === Op.AppOut);
        if ((fd ?? 1) === 1) stdout = spec;
        else if (fd === 2) stderr = spec;
        else throw new RedirectError(`${fd}: only file descriptors 0, 1 and 2 are supported`);
        break;
      }
      case Op.RdrAll:
      case Op.AppAll:
        stdout = await output(redir.Word, redir.Op === Op.AppAll);
        stderr = stdout;
        break;
      case Op.RdrIn:
      case Op.RdrInOut: {
        if ((fd ?? 0) !== 0) throw new RedirectError(`${fd}: only file descriptors 0, 1 and 2 are supported`);
        const target = await path(redir.Word);
        if (options.compound) {
          const stream = await openOrFail(() => options.executor.fs.openRead(target), target);
          opened.push(stream);
          stdin = { kind: "readable", stream };
        } else {
          stdin = { kind: "file", path: target };
        }
        break;
      }
      case Op.DplOut: {
        const to = await options.expander.string(redir.Word);
        const from = fd ?? 1;
        let spec: OutputSpec;
        if (to === "1") spec = stdout;
        else if (to === "2") spec = stderr;
        else if (to === "-") spec = { kind: "null" };
        else if (fd === null) {
          // bash: `>&file` is `&>file`.
          stdout = await output(redir.Word, false);
          stderr = stdout;
          break;
        } else throw new RedirectError(`${to}: bad file descriptor`);
        if (from === 1) stdout = spec;
        else if (from === 2) stderr = spec;
        else throw new RedirectError(`${from}: only file descriptors 0, 1 and 2 are supported`);
        break;
      }
      case Op.DplIn: {
        const to = await options.expander.string(redir.Word);
        if (to === "-") stdin = { kind: "null" };
        else if (to !== "0") throw new RedirectError(`${to}: bad file descriptor`);
        break;
      }
      case Op.Hdoc:
      case Op.DashHdoc: {
        const body =
          redir.Hdoc === null
            ? ""
            : await options.expander.heredoc(redir.Hdoc, {
                stripTabs: redir.Op === Op.DashHdoc,
                expand: !isQuotedDelimiter(redir.Word),
              });
        stdin = textInput(body);
        break;
      }
      case Op.WordHdoc:
        stdin = textInput(`${await options.expander.string(redir.Word)}\n`);
        break;
      default:
        throw new RedirectError(`unsupported redirection (operator ${redir.Op})`);
    }
  }
  return {
    io: { stdin, stdout, stderr },
    release: () => {
      for (const stream of opened) stream.destroy();
    },
  };
}

function textInput(text: string): InputSpec {
  return { kind: "readable", stream: Readable.from([Buffer.from(text)]) };
}

/** `<<'EOF'`, `<<"EOF"`, `<<\EOF`: the body is taken literally. */
function isQuotedDelimiter(word: Word): boolean {
  return word.Parts.some((part) => !isNode(part, "Lit") || part.Value.includes("\\"));
}

async function openOrFail<T>(open: () => Promise<T>, path: string): Promise<T> {
  try {
    return await open();
  } catch (err: unknown) {
    const code = typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
    const reason =
      code === "ENOENT"
        ? "No such file or directory"
        : code === "EACCES"
          ? "Permission denied"
          : code === "EISDIR"
            ? "Is a directory"
            : err instanceof Error
              ? err.message
              : String(err);
    throw new RedirectError(`${path}: ${reason}`, { cause: err });
  }
}

export { openOrFail };
