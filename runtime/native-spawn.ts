import { constants } from "node:os";
import { addon } from "./native-addon.js";

/** How a spawned child ended: an exit code, or the signal that killed it. */
export interface NativeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface NativeChild {
  readonly pid: number;
  readonly exited: Promise<NativeExit>;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]),
);

/**
 * Starts a program with posix_spawn (vfork: its cost does not grow with the runtime's memory, as
 * fork's does) in a new session and process group, stdio from `fds` (-1: /dev/null); with `namespace`,
 * the child enters the node's namespaces and takes the user's ids itself before exec (see spawn.c).
 * Throws an Error with `code` ENOENT or EACCES when the program cannot be started.
 */
export function spawnNative(options: {
  readonly file: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly fds: readonly [number, number, number];
  /** Enter these namespaces (`/proc/PID/ns/...` paths) and take these ids between clone and exec; `file` must be absolute. */
  readonly namespace?: { readonly mnt: string; readonly net: string | null; readonly uid: number; readonly gid: number };
}): NativeChild {
  let resolveExit!: (exit: NativeExit) => void;
  const exited = new Promise<NativeExit>((resolve) => (resolveExit = resolve));
  const env = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
  const pid = addon.spawn(
    options.file,
    options.argv,
    env,
    options.cwd ?? null,
    options.fds,
    (code, signal) => resolveExit({ code, signal: signal === null ? null : (SIGNAL_NAMES.get(signal) ?? "SIGKILL") }),
    options.namespace,
  );
  return { pid, exited };
}
