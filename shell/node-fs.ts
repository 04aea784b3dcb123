import { Writable, type Readable } from "node:stream";
import {
  decode,
  fromWireError,
  KernelError,
  newStreamId,
  notifyInbox,
  parseFileClosed,
  type FileClosed,
  type KernelClient,
  type NodeReply,
} from "../pseudokernel/index.js";
import type { ShellFs } from "./executor.js";

/** A builtin's output file is closed by its node within this, or the write fails with ETIMEDOUT. */
const CLOSE_TIMEOUT_MS = 60_000;

/**
 * The shell's own file system: the file tree as processes on its home node see it (CloudFS at /home,
 * the node's own /tmp…), reached through that node's runtime — so `cd`, globbing and `echo hi > f`
 * agree with what `cat f` on any node reads, and the shell needs no mount of its own.
 */
export class NodeFs implements ShellFs {
  #kernel: KernelClient;
  #node: () => string;

  /** `node` names the home node now (it may change if that node is lost). */
  constructor(kernel: KernelClient, node: () => string) {
    this.#kernel = kernel;
    this.#node = node;
  }

  async #ask(request: Parameters<KernelClient["request"]>[1]): Promise<NodeReply> {
    try {
      return await this.#kernel.request(this.#node(), request);
    } catch (error) {
      throw asFsError(error);
    }
  }

  async stat(path: string): Promise<{ readonly isDirectory: boolean } | null> {
    const reply = await this.#ask({ type: "fs", op: "stat", path });
    if (reply.type !== "stat") throw new KernelError("EIO", `unexpected reply ${reply.type}`);
    return reply.exists ? { isDirectory: reply.isDirectory } : null;
  }

  async readdir(path: string): Promise<string[]> {
    const reply = await this.#ask({ type: "fs", op: "readdir", path });
    if (reply.type !== "entries") throw new KernelError("EIO", `unexpected reply ${reply.type}`);
    return [...reply.names];
  }

  async mkdirp(path: string): Promise<void> {
    await this.#ask({ type: "fs", op: "mkdir", path });
  }

  async openRead(path: string): Promise<Readable> {
    const stream = newStreamId();
    const reader = this.#kernel.reader(stream);
    try {
      await this.#ask({ type: "open", path, mode: "r", stream, notify: "" });
    } catch (error) {
      reader.destroy();
      throw error;
    }
    return reader;
  }

  async openWrite(path: string, options: { readonly append: boolean }): Promise<Writable> {
    const stream = newStreamId();
    const notify = notifyInbox();
    let onClosed: (event: FileClosed) => void = () => undefined;
    const closed = new Promise<FileClosed>((resolve) => (onClosed = resolve));
    const sub = this.#kernel.nc.subscribe(notify, {
      max: 1,
      callback: (err, msg) => {
        if (err !== null) return;
        try {
          onClosed(parseFileClosed(decode(msg.data)));
        } catch {
          // not ours
        }
      },
    });
    try {
      await this.#ask({ type: "open", path, mode: options.append ? "a" : "w", stream, notify });
    } catch (error) {
      sub.unsubscribe();
      throw error;
    }
    const inner = this.#kernel.writer(stream);
    return new Writable({
      write(chunk: Buffer, _encoding, callback) {
        inner.write(chunk, (error) => callback(error ?? null));
      },
      final(callback) {
        // Done only once the node has closed the file: then every node's next open sees the bytes.
        inner.end();
        const timer = setTimeout(
          () => onClosed({ type: "closed", error: { name: "KernelError", code: "ETIMEDOUT", message: `${path}: not closed` } }),
          CLOSE_TIMEOUT_MS,
        );
        void closed.then((event) => {
          clearTimeout(timer);
          sub.unsubscribe();
          callback(event.error === undefined ? null : asFsError(fromWireError(event.error)));
        });
      },
      destroy(error, callback) {
        sub.unsubscribe();
        inner.destroy(error ?? undefined);
        callback(error);
      },
    });
  }
}

/** Errors shaped like node:fs's (`code` ENOENT, EACCES, EISDIR…): the interpreter prints them as bash does. */
function asFsError(error: unknown): Error {
  if (!(error instanceof KernelError)) return error as Error;
  const reason = error.message.replace(/^.*: /, "");
  const code =
    error.code === "ENOENT" ? (reason === "Not a directory" ? "ENOTDIR" : "ENOENT") : error.code === "EACCES" ? "EACCES" : reason === "Is a directory" ? "EISDIR" : error.code;
  return Object.assign(new Error(error.message, { cause: error }), { code });
}
