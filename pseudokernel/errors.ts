/**
 * Errors of the pseudokernel. Each carries a stable `code`; across NATS they travel as
 * `{ name, code, message }` data and are rebuilt from `code` (never parsed from message text).
 */

/** Every code the kernel API may answer with. */
export const ERROR_CODES = [
  "EBADMSG", // a message that does not decode or validate
  "ENOENT", // no such file or directory (cwd, redirection target)
  "ENOCMD", // command not found on the node's PATH
  "EACCES", // permission denied (not executable, not readable)
  "EPERM", // operation not permitted (signal to another user's process)
  "ESRCH", // no such process
  "ENONODE", // no such node / node not ready
  "EPLACE", // no node satisfies the placement
  "EPIPE", // the reader of a stream went away
  "ECONNRESET", // the writer of a stream aborted
  "ETIMEDOUT", // a bounded wait ran out
  "EPEERLOST", // the other end of a stream stopped answering (its node was lost)
  "EINVAL", // a well-formed request with an invalid value
  "EEXIST", // it exists already (useradd of a taken name)
  "EIO", // anything else that went wrong while doing I/O
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && CODE_SET.has(value);
}

/** An expected failure of a kernel operation. */
export class KernelError extends Error {
  override readonly name: string = "KernelError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The wire form of an error. */
export interface WireError {
  readonly name: string;
  readonly code: ErrorCode;
  readonly message: string;
}

/**
 * Longest message an error carries across the wire; receivers refuse longer ones (4096). Messages
 * quote what the caller sent (a 100 KB command name in "command not found"), so they are cut here.
 */
const WIRE_MESSAGE_MAX = 1024;

function wireMessage(message: string): string {
  return message.length <= WIRE_MESSAGE_MAX ? message : `${message.slice(0, WIRE_MESSAGE_MAX - 1)}…`;
}

export function toWireError(error: unknown): WireError {
  if (error instanceof KernelError) return { name: error.name, code: error.code, message: wireMessage(error.message) };
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return { name: "KernelError", code: isErrorCode(code) ? code : "EIO", message: wireMessage(message) };
}

export function fromWireError(wire: WireError): KernelError {
  return new KernelError(wire.code, wire.message);
}

/** For broken invariants only: a bug in oneos, never an expected outcome. */
export class BugIndicatingError extends Error {
  override readonly name = "BugIndicatingError";
}
