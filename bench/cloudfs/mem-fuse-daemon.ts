#!/usr/bin/env node
/**
 * The FUSE ceiling: an in-memory fuse-native file system with the same libfuse options as CloudFS,
 * in its own process like the CloudFS daemon. `--mount DIR`; prints `{"ready":true}`; SIGTERM unmounts.
 */
import { parseArgs } from "node:util";
import { cloudFsMountOptions, createFuse, DEFAULT_FUSE_TUNING, type FuseOps } from "../../vfs-fuse/index.js";

type Cb = (err: number, ...rest: unknown[]) => void;
interface Node {
  mode: number;
  data: Buffer;
  size: number;
  children?: Map<string, Node>;
  mtime: Date;
}
const ENOENT = -2;
const EEXIST = -17;

function memOps(): FuseOps {
  const root: Node = { mode: 0o40755, data: Buffer.alloc(0), size: 0, children: new Map(), mtime: new Date() };
  const fds = new Map<number, Node>();
  let nextFd = 1;
  const split = (p: string): [Node | undefined, string] => {
    const parts = p.split("/").filter(Boolean);
    const name = parts.pop() ?? "";
    let cur: Node | undefined = root;
    for (const part of parts) cur = cur?.children?.get(part);
    return [cur, name];
  };
  const get = (p: string): Node | undefined => {
    if (p === "/") return root;
    const [dir, name] = split(p);
    return dir?.children?.get(name);
  };
  const st = (n: Node) => ({ mode: n.mode, size: n.size, nlink: 1, uid: 0, gid: 0, mtime: n.mtime, atime: n.mtime, ctime: n.mtime, blksize: 131072, blocks: Math.ceil(n.size / 512) });
  const mk = (p: string, mode: number, dir: boolean): number => {
    const [parent, name] = split(p);
    if (parent?.children === undefined) return ENOENT;
    if (parent.children.has(name)) return EEXIST;
    const n: Node = { mode: (dir ? 0o40000 : 0o100000) | (mode & 0o7777), data: Buffer.alloc(0), size: 0, mtime: new Date() };
    if (dir) n.children = new Map();
    parent.children.set(name, n);
    return 0;
  };
  const ops = {
    getattr: (p: string, cb: Cb) => {
      const n = get(p);
      return n ? cb(0, st(n)) : cb(ENOENT);
    },
    fgetattr: (_p: string, fd: number, cb: Cb) => {
      const n = fds.get(fd);
      return n ? cb(0, st(n)) : cb(ENOENT);
    },
    readdir: (p: string, cb: Cb) => {
      const n = get(p);
      return n?.children ? cb(0, [".", "..", ...n.children.keys()]) : cb(ENOENT);
    },
    mkdir: (p: string, mode: number, cb: Cb) => cb(mk(p, mode, true)),
    create: (p: string, mode: number, cb: Cb) => {
      const e = mk(p, mode, false);
      if (e !== 0) return cb(e);
      const fd = nextFd++;
      fds.set(fd, get(p)!);
      return cb(0, fd);
    },
    open: (p: string, _flags: number, cb: Cb) => {
      const n = get(p);
      if (!n) return cb(ENOENT);
      const fd = nextFd++;
      fds.set(fd, n);
      return cb(0, fd);
    },
    release: (_p: string, fd: number, cb: Cb) => {
      fds.delete(fd);
      cb(0);
    },
    read: (_p: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
      const n = fds.get(fd)!;
      const end = Math.min(n.size, pos + len);
      if (end <= pos) return cb(0);
      n.data.copy(buf, 0, pos, end);
      return cb(end - pos);
    },
    write: (_p: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
      const n = fds.get(fd)!;
      if (pos + len > n.data.length) {
        const grown = Buffer.alloc(Math.max(pos + len, n.data.length * 2));
        n.data.copy(grown, 0, 0, n.size);
        n.data = grown;
      }
      buf.copy(n.data, pos, 0, len);
      n.size = Math.max(n.size, pos + len);
      n.mtime = new Date();
      return cb(len);
    },
    truncate: (p: string, size: number, cb: Cb) => {
      const n = get(p);
      if (!n) return cb(ENOENT);
      n.size = Math.min(size, n.data.length);
      return cb(0);
    },
    ftruncate: (_p: string, fd: number, size: number, cb: Cb) => {
      const n = fds.get(fd)!;
      n.size = Math.min(size, n.data.length);
      return cb(0);
    },
    unlink: (p: string, cb: Cb) => {
      const [dir, name] = split(p);
      return dir?.children?.delete(name) ? cb(0) : cb(ENOENT);
    },
    rmdir: (p: string, cb: Cb) => {
      const [dir, name] = split(p);
      return dir?.children?.delete(name) ? cb(0) : cb(ENOENT);
    },
    utimens: (_p: string, _a: number, _m: number, cb: Cb) => cb(0),
    chmod: (_p: string, _m: number, cb: Cb) => cb(0),
    chown: (_p: string, _u: number, _g: number, cb: Cb) => cb(0),
    flush: (_p: string, _fd: number, cb: Cb) => cb(0),
  };
  return ops as unknown as FuseOps;
}

const { values } = parseArgs({ options: { mount: { type: "string" } } });
if (values.mount === undefined) throw new Error("usage: mem-fuse-daemon --mount DIR");
const mountpoint = values.mount;
const fuse = createFuse(mountpoint, memOps(), cloudFsMountOptions(DEFAULT_FUSE_TUNING), { mkdir: true });
fuse.mount((err) => {
  if (err) {
    process.stdout.write(JSON.stringify({ ready: false, error: err.message }) + "\n");
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ ready: true, mount: mountpoint }) + "\n");
});
const stop = (): void => fuse.unmount(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
