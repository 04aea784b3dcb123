import { close, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { Socket } from "node:net";
import { fileURLToPath } from "node:url";

interface PipeAddon {
  pipe(size?: number): [number, number];
}

// The addon is built by `npm run build:native` (node-gyp) into runtime/native/build, next to its source.
// This file runs compiled from dist/runtime, or from source under vitest: try the build next to us first.
const ADDON = "native/build/Release/oneos_pipe.node";
const addon = (() => {
  const load = createRequire(import.meta.url);
  const here = new URL(`./${ADDON}`, import.meta.url);
  const fromDist = new URL(`../../runtime/${ADDON}`, import.meta.url);
  return (existsSync(here) ? load(fileURLToPath(here)) : load(fileURLToPath(fromDist))) as PipeAddon;
})();

/**
 * A real pipe(2): `[readFd, writeFd]`, close-on-exec. Give one end to a child via spawn's stdio and wrap
 * the other with `pipeSocket`.
 */
export function osPipe(): [number, number] {
  return addon.pipe();
}

/** Our end of a pipe as a non-blocking Node stream (libuv watches it; no thread-pool reads). */
export function pipeSocket(fd: number, direction: "read" | "write"): Socket {
  return new Socket({ fd, readable: direction === "read", writable: direction === "write", allowHalfOpen: true });
}

/** Closes a descriptor we handed to a child (it has its own copy now). */
export function closeFd(fd: number): void {
  close(fd, () => undefined);
}
