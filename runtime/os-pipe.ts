import { close } from "node:fs";
import { Socket } from "node:net";
import { addon } from "./native-addon.js";

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
