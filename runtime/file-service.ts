import { close, createReadStream, createWriteStream, fstat, type Stats } from "node:fs";
import { readdir } from "node:fs/promises";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { mkdirAs, openAs, type FsIdentity } from "./as-user.js";
import type { ProcessView } from "./local-process.js";
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
    case "EEXIST":
      return new KernelError("EEXIST", `${path}: File exists`);
    default:
      return new KernelError("EIO", `${path}: ${(error as Error).message}`);
  }
}

/**
 * The node's files as its processes see them, for clients that are not processes on the node: the
 * shell's cd, globbing and builtin redirections, the desktop. Paths arrive as processes see them and
 * are mapped to the runtime's view (`toLocal`); all I/O is async, never on the FUSE daemon's loop.
 * Every check is made as the asking user (`openAs`): what they could not open themselves, they cannot
 * open through the runtime either.
 */
export class FileService {
  #transport: StreamTransport;
  #view: ProcessView;
  #publish: (subject: string, data: Uint8Array) => void;

  constructor(transport: StreamTransport, view: ProcessView, publish: (subject: string, data: Uint8Array) => void) {
    this.#transport = transport;
    this.#view = view;
    this.#publish = publish;
  }

  async fs(request: FsRequest, who: FsIdentity): Promise<NodeReply> {
    const local = this.#view.toLocal(request.path);
    const base = this.#view.mount;
    try {
      switch (request.op) {
        case "stat": {
          const st = await statAs(local, who, base).catch((error: NodeJS.ErrnoException) => {
            if (error.code === "ENOENT" || error.code === "ENOTDIR") return null;
            throw error;
          });
          return st === null
            ? { type: "stat", exists: false, isDirectory: false, size: 0, mode: 0 }
            : { type: "stat", exists: true, isDirectory: st.isDirectory(), size: st.size, mode: st.mode };
        }
        case "readdir":
          // Reading the names needs read permission on the directory: proven by opening it as them.
          closeQuietly(await openAs(local, "dir", who, 0, base));
          return { type: "entries", names: await readdir(local) };
        case "mkdir":
          await mkdirsAs(local, who, base);
          return { type: "done" };
      }
    } catch (error) {
      throw fsError(error, request.path);
    }
  }

  async open(request: OpenRequest, who: FsIdentity): Promise<NodeReply> {
    const local = this.#view.toLocal(request.path);
    const base = this.#view.mount;
    const fd = await openAs(local, request.mode, who, 0o666, base).catch((error: unknown) => {
      throw fsError(error, request.path);
    });
    // A FIFO or socket would tie up a file-system worker thread per read: not through the runtime.
    const st = await fstatFd(fd).catch(() => null);
    if (st === null || st.isFIFO() || st.isSocket()) {
      closeQuietly(fd);
      throw new KernelError("EINVAL", `${request.path}: a FIFO or socket cannot be opened through the runtime`);
    }
    if (request.mode === "r") {
      const file = createReadStream(local, { fd });
      const writer = new StreamWriter(this.#transport, request.stream);
      file.pipe(writer);
      file.on("error", (error) => writer.destroy(fsError(error, request.path)));
      writer.on("error", () => file.destroy());
      return { type: "done" };
    }
    const file = createWriteStream(local, { fd });
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

const fstatFd = promisify(fstat);

function closeQuietly(fd: number): void {
  close(fd, () => undefined);
}

/** stat(2) as `who`: resolving the path needs their search permission on every directory on the way. */
async function statAs(local: string, who: FsIdentity, base: string | undefined): Promise<Stats> {
  const fd = await openAs(local, "path", who, 0, base);
  try {
    return await fstatFd(fd);
  } finally {
    closeQuietly(fd);
  }
}

/** `mkdir -p` as `who`: each missing directory is made by them, so it is theirs. */
async function mkdirsAs(local: string, who: FsIdentity, base: string | undefined): Promise<void> {
  const missing: string[] = [];
  for (let dir = local; ; dir = dirname(dir)) {
    const st = await statAs(dir, who, base).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return null;
      throw error;
    });
    if (st !== null) {
      if (!st.isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
      break;
    }
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing) {
    await mkdirAs(dir, who, 0o777, base).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
  }
}
