import type { Readable, Writable } from "node:stream";
import type { ExecContext, ShellRuntime } from "../context.js";
import { writeTo } from "../io.js";

/** What a builtin runs with: its arguments, its opened streams, and the shell. */
export interface BuiltinCall {
  /** `argv[0]` is the builtin's name. */
  readonly argv: readonly string[];
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly ctx: ExecContext;
  readonly shell: ShellRuntime;
}

/** A builtin returns its exit status; it may throw ExitRequest/ReturnRequest/LoopControl. */
export type Builtin = (call: BuiltinCall) => Promise<number>;

export async function print(stream: Writable, text: string): Promise<void> {
  await writeTo(stream, text);
}

/** `name: message` on stderr, as builtins report usage errors; returns `status` for `return fail(...)`. */
export async function fail(call: BuiltinCall, message: string, status = 1): Promise<number> {
  await writeTo(call.stderr, `oneos: ${call.argv[0] ?? ""}: ${message}\n`);
  return status;
}
