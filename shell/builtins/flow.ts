import { ExitRequest, LoopControl, ReturnRequest } from "../control-flow.js";
import { isAbsolute, resolve } from "node:path";
import { fail, type Builtin } from "./builtin.js";

export const trueBuiltin: Builtin = async () => 0;
export const falseBuiltin: Builtin = async () => 1;

function statusArg(arg: string | undefined, fallback: number): number | null {
  if (arg === undefined) return fallback;
  if (!/^-?[0-9]+$/.test(arg)) return null;
  return ((Number(arg) % 256) + 256) % 256;
}

/** `exit [n]`: ends the shell (or the subshell it runs in). */
export const exitBuiltin: Builtin = async (call) => {
  const status = statusArg(call.argv[1], call.ctx.state.lastStatus);
  if (status === null) {
    await fail(call, `${call.argv[1] ?? ""}: numeric argument required`);
    throw new ExitRequest(2);
  }
  throw new ExitRequest(status);
};

export const returnBuiltin: Builtin = async (call) => {
  const status = statusArg(call.argv[1], call.ctx.state.lastStatus);
  if (status === null) return fail(call, `${call.argv[1] ?? ""}: numeric argument required`, 2);
  throw new ReturnRequest(status);
};

function loopControl(kind: "break" | "continue"): Builtin {
  return async (call) => {
    const levels = Number(call.argv[1] ?? "1");
    if (!Number.isInteger(levels) || levels < 1) return fail(call, `${call.argv[1] ?? ""}: loop count out of range`);
    throw new LoopControl(kind, levels);
  };
}
export const breakBuiltin = loopControl("break");
export const continueBuiltin = loopControl("continue");

/** `source file [args]` / `. file`: runs the file in this shell. */
export const sourceBuiltin: Builtin = async (call) => {
  const file = call.argv[1];
  if (file === undefined) return fail(call, "filename argument required", 2);
  const path = isAbsolute(file) ? file : resolve(call.ctx.state.cwd, file);
  let text: string;
  try {
    const stream = await call.shell.executor.fs.openRead(path);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
    text = Buffer.concat(chunks).toString("utf8");
  } catch {
    return fail(call, `${file}: No such file or directory`);
  }
  const state = call.ctx.state;
  const saved = state.positional;
  if (call.argv.length > 2) state.positional = call.argv.slice(2);
  try {
    return await call.shell.runSource(text, call.ctx);
  } catch (err: unknown) {
    if (err instanceof ReturnRequest) return err.status;
    throw err;
  } finally {
    if (call.argv.length > 2) state.positional = saved;
  }
};

/** `eval args`: the arguments joined and run as shell text. */
export const evalBuiltin: Builtin = async (call) => call.shell.runSource(call.argv.slice(1).join(" "), call.ctx);
