import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** file, argv, env (`K=V`), cwd, stdio descriptors (-1: /dev/null), and the exit callback. */
type SpawnArgs = [
  file: string,
  argv: readonly string[],
  env: readonly string[],
  cwd: string | null,
  fds: readonly [number, number, number],
  onExit: (code: number | null, signal: number | null) => void,
];

/**
 * The runtime's N-API addon (runtime/native): real pipes, file opens as a cluster user, posix_spawn, and
 * TCP sockets made in a node's network namespace.
 */
export interface NativeAddon {
  pipe(size?: number): [number, number];
  openAs(path: string, flags: number, mode: number, uid: number, gid: number, base?: string): Promise<number>;
  mkdirAs(path: string, mode: number, uid: number, gid: number, base?: string): Promise<number>;
  spawn(...args: SpawnArgs): number;
  /** `spawn` into a node's namespaces as uid/gid with a umask, on a worker thread (see spawn.c). */
  spawnIn(
    ...args: [
      ...SpawnArgs,
      namespace: {
        readonly mnt: string;
        readonly net: string | null;
        readonly uts: string | null;
        readonly pidns: string | null;
        readonly pid: number;
        /** kill(2) to a possible cluster PID goes to onKill (see kill-relay.c). */
        readonly relayKills: boolean;
        /** The node's block of cluster PIDs [ownFrom, ownTo): their kill(2) stays the kernel's. */
        readonly ownFrom: number;
        readonly ownTo: number;
        readonly uid: number;
        readonly gid: number;
        readonly umask: number;
      },
    ]
  ): Promise<number>;
  /**
   * Each kill(2) a relaying child (spawnIn's `relayKills`) makes to a PID below 2,000,000: `watch` and
   * `id` name it for killReply; the caller's host PID, real and effective uid; the PID and signal asked.
   */
  onKill(fn: (watch: number, id: bigint, callerPid: number, ruid: number, euid: number, pid: number, signal: number) => void): void;
  /** Takes and watches the relay listener process `pid` holds (oneos-pidns enter's); false if none yet. */
  adoptKillListener(pid: number): boolean;
  /** That kill(2) returns 0 (errno 0) or fails with errno, or (goOn) goes on to the kernel as it was. False if it waits no more. */
  killReply(watch: number, id: bigint, errno: number, goOn: boolean): boolean;
  /** A socket in the namespace of `nsFd` bound to `[::]:port` (IPv4 too) and listening; its fd. Throws Error(errno name). */
  listenIn(nsFd: number, port: number, backlog: number): number;
  /**
   * A socket in the namespace of `nsFd` connecting to numeric `host`:`port`: its fd if connected at
   * once (loopback, usually; `done` is then never called), else `done(null, fd)` once connected or
   * `done(errno name, -1)` if not. Throws Error(errno name) if it cannot even start or is refused at once.
   */
  connectIn(nsFd: number, host: string, port: number, timeoutMs: number, done: (code: string | null, fd: number) => void): number | undefined;
  /**
   * Accepts `listenFd`'s connections on the loop: each new socket's fd (non-blocking, TCP_NODELAY) with
   * the bytes the client had already sent (≤ 64 KiB, read with the accept; null if none), or a negative
   * errno when accepting fails (then it pauses 100 ms). The returned stop() ends it and closes `listenFd`.
   */
  acceptOn(listenFd: number, onConnection: (fd: number, firstBytes: Buffer | null) => void): () => void;
}

// Built by `npm run build:native` (node-gyp) into runtime/native/build, next to its source. This file
// runs compiled from dist/runtime, or from source under vitest: try the build next to us first.
const ADDON = "native/build/Release/oneos_pipe.node";

/** `oneos-pidns` (pidns.c): holds a node's PID namespace, and starts a terminal's program in it. */
export const PIDNS_PROGRAM = ((): string => {
  const built = "native/build/Release/oneos-pidns";
  const here = new URL(`./${built}`, import.meta.url);
  return fileURLToPath(existsSync(here) ? here : new URL(`../../runtime/${built}`, import.meta.url));
})();

export const addon = ((): NativeAddon => {
  const load = createRequire(import.meta.url);
  const here = new URL(`./${ADDON}`, import.meta.url);
  const fromDist = new URL(`../../runtime/${ADDON}`, import.meta.url);
  return (existsSync(here) ? load(fileURLToPath(here)) : load(fileURLToPath(fromDist))) as NativeAddon;
})();
