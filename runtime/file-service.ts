import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, stat } from "node:fs/promises";
import {
  encode,
  KernelError,
  StreamReader,
  StreamWriter,
  toWireError,
  type FileClosed,
  type FsRequest,
  type NodeReply,
  type OpenRequest,
  type StreamTransport,
} from "../pseudokernel/index.js";

/** Maps a file-system error to a kernel error with the message a shell prints. */
function fsError(error: unknown, path: string): KernelError {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return new KernelError("ENOENT", `${path}: No such file or directory`);
    case "EACCES":
    case "EPERM":
      return new KernelError("EACCES", `${path}: Permission denied`);
    case "ENOTDIR":
      return new KernelError("ENOENT", `${path}: Not a directory`);
    case "EISDIR":
      return new KernelError("EINVAL", `${path}: Is a directory`);
    default:
      return new KernelError("EIO", `${path}: ${(error as Error).message}`);
  }
}

/**
 * The node's files as its processes see them, for clients that are not processes on the node: the
 * shell's cd, globbing and builtin redirections, the desktop. Paths arrive as processes see them and
 * are mapped to the runtime's view (`toLocal`); all I/O is async, never on the FUSE daemon's loop.
 */
export class FileService {
  #transport: StreamTransport;
  #toLocal: (path: string) => string;
  #publish: (subject: string, data: Uint8Array) => void;

  constructor(transport: StreamTransport, toLocal: (path: string) => string, publish: (subject: string, data: Uint8Array) => void) {
    this.#transport = transport;
    this.#toLocal = toLocal;
    this.#publish = publish;
  }

  async fs(request: FsRequest): Promise<NodeReply> {
    const local = this.#toLocal(request.path);
    try {
      switch (request.op) {
        case "stat": {
          const st = await stat(local).catch((error: NodeJS.ErrnoException) => {
            if (error.code === "ENOENT" || error.code === "ENOTDIR") return null;
            throw error;
          });
          return st === null
            ? { type: "stat", exists: false, isDirectory: false, size: 0, mode: 0 }
            : { type: "stat", exists: true, isDirectory: st.isDirectory(), size: st.size, mode: st.mode };
        }
        case "readdir":
          return { type: "entries", names: await readdir(local) };
        case "mkdir":
          await mkdir(local, { recursive: true });
          return { type: "done" };
      }
    } catch (error) {
      throw fsError(error, request.path);
    }
  }

  async open(request: OpenRequest): Promise<NodeReply> {
    const local = this.#toLocal(request.path);
    if (request.mode === "r") {
      const file = createReadStream(local);
      await new Promise<void>((resolve, reject) => {
        file.once("open", () => resolve());
        file.once("error", (error) => reject(fsError(error, request.path)));
      });
      const writer = new StreamWriter(this.#transport, request.stream);
      file.pipe(writer);
      file.on("error", (error) => writer.destroy(fsError(error, request.path)));
      writer.on("error", () => file.destroy());
      return { type: "done" };
    }
    const file = createWriteStream(local, { flags: request.mode });
    await new Promise<void>((resolve, reject) => {
      file.once("open", () => resolve());
      file.once("error", (error) => reject(fsError(error, request.path)));
    });
    const reader = new StreamReader(this.#transport, request.stream);
    reader.pipe(file);
    let failure: unknown;
    reader.on("error", (error) => {
      failure = error;
      file.end();
    });
    file.on("error", (error) => {
      failure = fsError(error, request.path);
      reader.destroy();
    });
    // After close(2) returns, another node's open sees the bytes (close-to-open): only then say so.
    file.once("close", () => {
      const event: FileClosed = failure === undefined ? { type: "closed" } : { type: "closed", error: toWireError(failure) };
      this.#publish(request.notify, encode(event));
    });
    return { type: "done" };
  }
}
