import { constants } from "node:os";
import { addon } from "./native-addon.js";
import type { LaunchNamespace } from "./local-process.js";

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
 * fork's does) in a new session and process group, stdio from `fds` (-1: /dev/null), with `umask`;
 * with `namespace`, the child enters the node's namespaces and takes the user's ids itself before
 * exec, on a worker thread (see spawn.c). The descriptors must stay open until it resolves. Rejects
 * with an Error whose `code` is the errno's name (ENOENT, EACCES, ...) when the program cannot be started.
 */
export async function spawnNative(options: {
  readonly file: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly fds: readonly [number, number, number];
  readonly umask: number;
  /**
   * Enter these namespaces (`/proc/PID/ns/...` paths) and take these ids between clone and exec; `file`
   * must be absolute. In `pidns` the child's PID is `pid` (EEXIST if taken; any where it cannot be chosen).
   */
  readonly namespace?: LaunchNamespace & { readonly pid: number; readonly relayKills: boolean; readonly ownFrom: number; readonly ownTo: number };
}): Promise<NativeChild> {
  let resolveExit!: (exit: NativeExit) => void;
  const exited = new Promise<NativeExit>((resolve) => (resolveExit = resolve));
  const env = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
  const onExit = (code: number | null, signal: number | null): void =>
    resolveExit({ code, signal: signal === null ? null : (SIGNAL_NAMES.get(signal) ?? "SIGKILL") });
  const cwd = options.cwd ?? null;
  const pid =
    options.namespace !== undefined
      ? await addon.spawnIn(options.file, options.argv, env, cwd, options.fds, onExit, { ...options.namespace, umask: options.umask })
      : withUmask(options.umask, () => addon.spawn(options.file, options.argv, env, cwd, options.fds, onExit));
  return { pid, exited };
}

/**
 * Node has no per-spawn umask: a child made on this thread (posix_spawn, node-pty's fork) copies ours,
 * so it is set around the synchronous start.
 */
export function withUmask<T>(umask: number, spawnNow: () => T): T {
  const previous = process.umask(umask);
  try {
    return spawnNow();
  } finally {
    process.umask(previous);
  }
}
