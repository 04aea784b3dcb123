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
 * Where reads go by default, one read at a time on this thread: each chunk is copied out at once, so
 * one buffer serves all pipes and sockets (not 1 MiB each).
 */
let sharedBuffer: Buffer | undefined;

/**
 * A read at least this big suggests a bulk transfer: the next read of that pipe or socket goes into a
 * buffer of its own, handed on as it is (no copy), and so on while reads stay this big.
 */
const BULK_READ_BYTES = 256 * 1024;
/** Most pipes and sockets holding a buffer of their own between reads (PIPE_BYTES each). */
const MAX_BULK_READERS = 32;
let bulkReaders = 0;

/**
 * A child's output pipe, read in chunks of up to PIPE_BYTES (Node's own reads are 64 KiB, each a fresh
 * buffer), each handed to `onChunk`, which returns false to pause reading (resume() the socket to go
 * on). 'end', 'error' and 'close' come as usual.
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

/**
 * Small reads land in the shared buffer and are copied out; a pipe or socket whose reads are big gets a
 * buffer of its own for the next read, and that read is handed on without a copy (the stream keeps it
 * until acknowledged: a copy of each MiB cost the runtime about a sixth of its time at 500 MB/s).
 */
function readInChunks(fd: number, writable: boolean, onChunk: (chunk: Buffer) => boolean): Socket {
  const shared = (sharedBuffer ??= Buffer.allocUnsafeSlow(PIPE_BYTES));
  let next = shared;
  const socket = new Socket({
    fd,
    readable: true,
    writable,
    allowHalfOpen: true,
    onread: {
      // Node asks for the buffer of the next read right after each callback.
      buffer: () => next,
      callback: (n: number, buffer: Buffer) => {
        const bulk = n >= BULK_READ_BYTES;
        if (buffer === shared) {
          if (bulk && bulkReaders < MAX_BULK_READERS) {
            bulkReaders++;
            next = Buffer.allocUnsafeSlow(PIPE_BYTES);
          }
          return onChunk(Buffer.from(shared.subarray(0, n)));
        }
        if (bulk) {
          next = Buffer.allocUnsafeSlow(PIPE_BYTES);
          return onChunk(buffer.subarray(0, n));
        }
        bulkReaders--;
        next = shared;
        return onChunk(Buffer.from(buffer.subarray(0, n)));
      },
    },
  } as ConstructorParameters<typeof Socket>[0]);
  socket.once("close", () => {
    if (next !== shared) bulkReaders--;
    next = shared;
  });
  return socket;
}

/** A child's input pipe, our end, as a non-blocking Node stream (libuv watches it; no thread-pool writes). */
export function pipeWriter(fd: number): Socket {
  return new Socket({ fd, readable: false, writable: true, allowHalfOpen: true });
}

/** Closes a descriptor we handed to a child (it has its own copy now). */
export function closeFd(fd: number): void {
  close(fd, () => undefined);
}
