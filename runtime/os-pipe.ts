import { close } from "node:fs";
import { Socket } from "node:net";
import { addon } from "./native-addon.js";

/**
 * Capacity of the pipes between a runtime and its children (Linux's default is 64 KiB), and the most a
 * read of a child's output takes at once. Bigger chunks mean fewer wake-ups of the child and the
 * runtime and fewer stream frames: measured, `@n1 dd | @n2 cat >/dev/null` went from 0.89–0.96× to
 * 1.16× the ssh pipe's throughput, with both this and `pipeReader`.
 */
const PIPE_BYTES = 1024 * 1024;

/**
 * A real pipe(2): `[readFd, writeFd]`, close-on-exec, of PIPE_BYTES where the system allows. Give one
 * end to a child via spawn's stdio and wrap the other with `pipeReader` or `pipeWriter`.
 */
export function osPipe(): [number, number] {
  return addon.pipe(PIPE_BYTES);
}

/**
 * Where every child's output is read into, one read at a time on this thread: each chunk is copied out
 * at once, so one buffer serves all pipes (not 1 MiB per child).
 */
let readBuffer: Buffer | undefined;

/**
 * A child's output pipe, read in chunks of up to PIPE_BYTES (Node's own reads are 64 KiB, each a fresh
 * buffer): each chunk is copied out of the shared read buffer and handed to `onChunk`, which returns
 * false to pause reading (resume() the socket to go on). 'end', 'error' and 'close' come as usual.
 */
export function pipeReader(fd: number, onChunk: (chunk: Buffer) => boolean): Socket {
  return readInChunks(fd, false, onChunk);
}

/**
 * A connected TCP socket's fd (accepted or connected by the native addon) as a net.Socket, read as
 * `pipeReader` reads: up to 1 MiB at a time, each chunk to `onChunk`. Written to as usual.
 */
export function socketReader(fd: number, onChunk: (chunk: Buffer) => boolean): Socket {
  return readInChunks(fd, true, onChunk);
}

function readInChunks(fd: number, writable: boolean, onChunk: (chunk: Buffer) => boolean): Socket {
  const buffer = (readBuffer ??= Buffer.allocUnsafe(PIPE_BYTES));
  return new Socket({
    fd,
    readable: true,
    writable,
    allowHalfOpen: true,
    onread: { buffer, callback: (n: number) => onChunk(Buffer.from(buffer.subarray(0, n))) },
  } as ConstructorParameters<typeof Socket>[0]);
}

/** A child's input pipe, our end, as a non-blocking Node stream (libuv watches it; no thread-pool writes). */
export function pipeWriter(fd: number): Socket {
  return new Socket({ fd, readable: false, writable: true, allowHalfOpen: true });
}

/** Closes a descriptor we handed to a child (it has its own copy now). */
export function closeFd(fd: number): void {
  close(fd, () => undefined);
}
