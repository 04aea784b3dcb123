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
  /** A symbolic link's target. */
  target?: string;
  nlink: number;
  /** st_ino: the mount's options include use_ino (find and rm -rf tell directories apart by it). */
  ino: number;
  /** ms since the epoch. */
  mtime: number;
}
const ENOENT = -2;
const EEXIST = -17;
const ENOTDIR = -20;
const EISDIR = -21;
const EINVAL = -22;
const ENOTEMPTY = -39;
const S_IFMT = 0o170000;
const S_IFDIR = 0o40000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/**
 * Enough of POSIX for the bench's workloads (`tar -xf` of a real tree with symlinks and hard links,
 * `git clone`, `find`, `du`, `rm -rf`), all in memory: the cost of FUSE itself and nothing else.
 */
function memOps(): FuseOps {
  let lastIno = 1;
  const root: Node = { mode: S_IFDIR | 0o755, data: Buffer.alloc(0), size: 0, children: new Map(), nlink: 2, ino: 1, mtime: Date.now() };
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
  const st = (n: Node) => ({
    ino: n.ino,
    mode: n.mode,
    size: n.size,
    nlink: n.nlink,
    uid: 0,
    gid: 0,
    mtime: n.mtime,
    atime: n.mtime,
    ctime: n.mtime,
    blksize: 131072,
    blocks: Math.ceil(n.size / 512),
  });
  const isDir = (n: Node): boolean => (n.mode & S_IFMT) === S_IFDIR;
  /** Adds a new node under `p`'s parent; an errno or 0. */
  const add = (p: string, n: Node): number => {
    const [parent, name] = split(p);
    if (parent?.children === undefined) return ENOENT;
    if (parent.children.has(name)) return EEXIST;
    parent.children.set(name, n);
    parent.mtime = Date.now();
    return 0;
  };
  const mk = (p: string, mode: number, dir: boolean): number => {
    const n: Node = { mode: (dir ? S_IFDIR : S_IFREG) | (mode & 0o7777), data: Buffer.alloc(0), size: 0, nlink: dir ? 2 : 1, ino: ++lastIno, mtime: Date.now() };
    if (dir) n.children = new Map();
    return add(p, n);
  };
  const resize = (n: Node, size: number): void => {
    if (size > n.data.length) {
      const grown = Buffer.alloc(Math.max(size, n.data.length * 2));
      n.data.copy(grown, 0, 0, n.size);
      n.data = grown;
    } else if (size > n.size) {
      n.data.fill(0, n.size, size);
    }
    n.size = size;
    n.mtime = Date.now();
  };
  const remove = (p: string, dir: boolean): number => {
    const [parent, name] = split(p);
    const n = parent?.children?.get(name);
    if (parent === undefined || n === undefined) return ENOENT;
    if (dir && !isDir(n)) return ENOTDIR;
    if (!dir && isDir(n)) return EISDIR;
    if (dir && n.children!.size > 0) return ENOTEMPTY;
    parent.children!.delete(name);
    n.nlink--;
    parent.mtime = Date.now();
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
    create: (p: string, mode: number, _flags: number, cb: Cb) => {
      const e = mk(p, mode, false);
      if (e !== 0) return cb(e);
      const fd = nextFd++;
      fds.set(fd, get(p)!);
      return cb(0, fd);
    },
    open: (p: string, flags: number, cb: Cb) => {
      const n = get(p);
      if (!n) return cb(ENOENT);
      if ((flags & 0o1000) !== 0) resize(n, 0); // O_TRUNC
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
      if (pos + len > n.size) resize(n, pos + len);
      buf.copy(n.data, pos, 0, len);
      n.mtime = Date.now();
      return cb(len);
    },
    truncate: (p: string, size: number, cb: Cb) => {
      const n = get(p);
      if (!n) return cb(ENOENT);
      resize(n, size);
      return cb(0);
    },
    ftruncate: (_p: string, fd: number, size: number, cb: Cb) => {
      const n = fds.get(fd);
      if (!n) return cb(ENOENT);
      resize(n, size);
      return cb(0);
    },
    unlink: (p: string, cb: Cb) => cb(remove(p, false)),
    rmdir: (p: string, cb: Cb) => cb(remove(p, true)),
    symlink: (target: string, p: string, cb: Cb) =>
      cb(add(p, { mode: S_IFLNK | 0o777, data: Buffer.alloc(0), size: Buffer.byteLength(target), target, nlink: 1, ino: ++lastIno, mtime: Date.now() })),
    readlink: (p: string, cb: Cb) => {
      const n = get(p);
      if (!n) return cb(ENOENT);
      return n.target === undefined ? cb(EINVAL) : cb(0, n.target);
    },
    link: (src: string, dest: string, cb: Cb) => {
      const n = get(src);
      if (!n) return cb(ENOENT);
      const e = add(dest, n);
      if (e === 0) n.nlink++;
      return cb(e);
    },
    rename: (src: string, dest: string, cb: Cb) => {
      const [from, fromName] = split(src);
      const n = from?.children?.get(fromName);
      if (from === undefined || n === undefined) return cb(ENOENT);
      const [to, toName] = split(dest);
      if (to?.children === undefined) return cb(ENOENT);
      const old = to.children.get(toName);
      if (old === n) return cb(0);
      if (old !== undefined) {
        if (isDir(old) && !isDir(n)) return cb(EISDIR);
        if (!isDir(old) && isDir(n)) return cb(ENOTDIR);
        if (isDir(old) && old.children!.size > 0) return cb(ENOTEMPTY);
        old.nlink--;
      }
      from.children!.delete(fromName);
      to.children.set(toName, n);
      from.mtime = to.mtime = Date.now();
      return cb(0);
    },
    utimens: (p: string, _atime: number, mtime: number, cb: Cb) => {
      const n = get(p);
      if (!n) return cb(ENOENT);
      n.mtime = mtime;
      return cb(0);
    },
    chmod: (p: string, mode: number, cb: Cb) => {
      const n = get(p);
      if (!n) return cb(ENOENT);
      n.mode = (n.mode & S_IFMT) | (mode & 0o7777);
      return cb(0);
    },
    chown: (_p: string, _u: number, _g: number, cb: Cb) => cb(0),
    flush: (_p: string, _fd: number, cb: Cb) => cb(0),
    fsync: (_p: string, _datasync: boolean, _fd: number, cb: Cb) => cb(0),
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
