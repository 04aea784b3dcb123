import { constants } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { CloudFsCore, FsError, type Cred, type FsStat } from "../../vfs-fuse/index.js";
import { ApiError } from "./api-error.js";
import { parentOf } from "./cloud-path.js";
import { DELETE_MAX_ENTRIES, DOWNLOAD_CHUNK_BYTES, FILES_CACHE_BYTES, LIST_MAX_ENTRIES } from "./limits.js";

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

export interface FileEntry {
  readonly name: string;
  readonly type: "file" | "dir" | "symlink";
  readonly size: number;
  readonly mode: number;
  readonly mtime: number;
}

function typeOf(stat: FsStat): FileEntry["type"] {
  const fmt = stat.mode & S_IFMT;
  return fmt === S_IFDIR ? "dir" : fmt === S_IFLNK ? "symlink" : "file";
}

/**
 * The Files window's side of CloudFS: whole-file and streamed operations on top of `CloudFsCore`. Each
 * call runs with the logged-in user's `Cred`, so CloudFS checks that user's access and files they make
 * are theirs; one CloudFsCore (and block cache) serves every user. CloudFS is opened on first use, so
 * the desktop starts (and its terminal works) even while JetStream is still electing leaders.
 */
export class CloudFiles {
  readonly #nc: NatsConnection;
  #core: Promise<{ core: CloudFsCore; cacheDir: string }> | undefined;
  #closed = false;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
  }

  async #fs(): Promise<CloudFsCore> {
    if (this.#closed) throw new ApiError(503, "EIO", "the desktop is shutting down");
    this.#core ??= (async () => {
      const cacheDir = await mkdtemp(join(tmpdir(), "oneos-desktop-cache-"));
      try {
        // Its journal lives beside the cache and goes with it: a clean close stores what it holds.
        const core = await CloudFsCore.open({
          nc: this.#nc,
          cacheDir: join(cacheDir, "blocks"),
          journalDir: join(cacheDir, "journal"),
          cacheBytes: FILES_CACHE_BYTES,
          nodeId: `desktop-${randomBytes(4).toString("hex")}`,
        });
        return { core, cacheDir };
      } catch (error) {
        await rm(cacheDir, { recursive: true, force: true });
        throw new ApiError(503, "EIO", `CloudFS is not reachable: ${(error as Error).message}`, { cause: error });
      }
    })();
    try {
      return (await this.#core).core;
    } catch (error) {
      this.#core = undefined; // let the next request try again
      throw error;
    }
  }

  async stat(path: string, cred: Cred): Promise<FileEntry> {
    const fs = await this.#fs();
    const stat = await fs.stat(path, cred);
    return { name: path.slice(path.lastIndexOf("/") + 1), type: typeOf(stat), size: stat.size, mode: stat.mode & 0o7777, mtime: stat.mtime.getTime() };
  }

  /** A directory's entries, directories first, then by name; at most LIST_MAX_ENTRIES of them. */
  async list(path: string, cred: Cred): Promise<{ entries: FileEntry[]; total: number }> {
    const fs = await this.#fs();
    const raw = await fs.readdir(path, cred);
    const entries = raw.map(({ name, stat }) => ({ name, type: typeOf(stat), size: stat.size, mode: stat.mode & 0o7777, mtime: stat.mtime.getTime() }));
    entries.sort((a, b) => Number(b.type === "dir") - Number(a.type === "dir") || a.name.localeCompare(b.name));
    return { entries: entries.slice(0, LIST_MAX_ENTRIES), total: entries.length };
  }

  /** Streams a file's bytes out in chunks, waiting on `write` (the HTTP response's back-pressure). */
  async read(path: string, cred: Cred, to: { write: (chunk: Buffer) => Promise<void>; signal?: AbortSignal }): Promise<void> {
    const { write, signal } = to;
    const fs = await this.#fs();
    const fh = await fs.open(path, constants.O_RDONLY, cred);
    try {
      const size = (await fs.fgetattr(fh)).size;
      for (let offset = 0; offset < size; ) {
        if (signal?.aborted === true) return;
        const buf = Buffer.alloc(Math.min(DOWNLOAD_CHUNK_BYTES, size - offset));
        const n = await fs.read(fh, buf, buf.length, offset);
        if (n <= 0) break;
        await write(buf.subarray(0, n));
        offset += n;
      }
    } finally {
      await fs.release(fh);
    }
  }

  /**
   * Writes a file from a stream of chunks, capped at `limitBytes`. The bytes go to a hidden temporary
   * name beside the target, renamed over it only when complete: a failed or refused upload leaves the
   * old file as it was.
   */
  async write(path: string, cred: Cred, from: { chunks: AsyncIterable<Buffer>; limitBytes: number }): Promise<number> {
    const { chunks, limitBytes } = from;
    const fs = await this.#fs();
    const dir = parentOf(path);
    const base = path.slice(path.lastIndexOf("/") + 1);
    const temp = `${dir === "/" ? "" : dir}/.${base}.upload-${randomBytes(4).toString("hex")}`;
    const fh = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, cred, 0o644);
    let written = 0;
    let done = false;
    try {
      for await (const chunk of chunks) {
        if (written + chunk.length > limitBytes) {
          throw new ApiError(413, "EFBIG", `file too large: more than the ${formatBytes(limitBytes)} upload limit`);
        }
        await fs.write(fh, chunk, chunk.length, written);
        written += chunk.length;
      }
      await fs.release(fh);
      done = true;
      await fs.rename(temp, path, cred);
      return written;
    } catch (error) {
      if (!done) await fs.release(fh).catch(() => undefined);
      await fs.unlink(temp, cred).catch(() => undefined);
      throw error;
    }
  }

  async mkdir(path: string, cred: Cred): Promise<void> {
    await (await this.#fs()).mkdir(path, 0o755, cred);
  }

  /** Renames; unlike rename(2) it refuses to replace an existing target (a click should not destroy data). */
  async rename(from: string, to: string, cred: Cred): Promise<void> {
    const fs = await this.#fs();
    const exists = await fs.getattr(to, cred).then(() => true, (e: unknown) => {
      if (e instanceof FsError && e.code === "ENOENT") return false;
      throw e;
    });
    if (exists) throw new ApiError(409, "EEXIST", `${to} already exists`);
    await fs.rename(from, to, cred);
  }

  /** Deletes a file, or a directory with everything in it (up to DELETE_MAX_ENTRIES entries). */
  async remove(path: string, cred: Cred): Promise<number> {
    if (path === "/" || path === "/home") throw new ApiError(403, "EPERM", `${path} cannot be deleted from the desktop`);
    const fs = await this.#fs();
    let count = 0;
    const walk = async (p: string): Promise<void> => {
      if (++count > DELETE_MAX_ENTRIES) throw new ApiError(413, "EFBIG", `more than ${DELETE_MAX_ENTRIES} entries: delete this tree from the shell`);
      const stat = await fs.getattr(p, cred);
      if ((stat.mode & S_IFMT) === S_IFDIR) {
        for (const { name } of await fs.readdir(p, cred)) await walk(`${p}/${name}`);
        await fs.rmdir(p, cred);
      } else {
        await fs.unlink(p, cred);
      }
    };
    await walk(path);
    return count;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const opened = await this.#core?.catch(() => undefined);
    if (opened === undefined) return;
    await opened.core.close();
    await rm(opened.cacheDir, { recursive: true, force: true });
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}
