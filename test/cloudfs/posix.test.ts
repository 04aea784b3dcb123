import * as fsp from "node:fs/promises";
import { constants } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCloudFsCluster, sh, eventually, type CloudFsTestCluster } from "./cloudfs-cluster.js";
import { DEFAULT_FUSE_TUNING, FUSE_KNOWS_CALLER } from "../../vfs-fuse/index.js";

let c: CloudFsTestCluster;
let A: string;
let B: string;
let C: string;
let seq = 0;
/** A fresh directory under /home for one test, and the same path on every node. */
async function fresh(): Promise<{ a: string; b: string; c: string; rel: string }> {
  const rel = `home/t${++seq}`;
  await fsp.mkdir(join(A, rel));
  return { a: join(A, rel), b: join(B, rel), c: join(C, rel), rel };
}
const code = async (p: Promise<unknown>): Promise<string | undefined> => {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
};

beforeAll(async () => {
  c = await startCloudFsCluster(3);
  [A, B, C] = c.nodes.map((n) => n.mp) as [string, string, string];
});
afterAll(async () => {
  await c?.close();
});

describe("CloudFS POSIX conformance through a mount", () => {
  it("has / and /home (0755 root) on every node", async () => {
    for (const mp of [A, B, C]) {
      const s = await fsp.stat(join(mp, "home"));
      expect(s.isDirectory()).toBe(true);
      expect(s.mode & 0o7777).toBe(0o755);
      expect(s.uid).toBe(0);
    }
  });

  it("create, write, read, stat size; O_EXCL on an existing name is EEXIST", async () => {
    const d = await fresh();
    const f = join(d.a, "x.txt");
    await fsp.writeFile(f, "hello world");
    expect(await fsp.readFile(f, "utf8")).toBe("hello world");
    expect((await fsp.stat(f)).size).toBe(11);
    expect(await code(fsp.open(f, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY))).toBe("EEXIST");
  });

  it("O_TRUNC empties and O_APPEND appends", async () => {
    const d = await fresh();
    const f = join(d.a, "t");
    await fsp.writeFile(f, "0123456789");
    await fsp.writeFile(f, "ab");
    expect(await fsp.readFile(f, "utf8")).toBe("ab");
    await fsp.appendFile(f, "cd");
    const h = await fsp.open(f, constants.O_WRONLY | constants.O_APPEND);
    await h.write("ef");
    await h.close();
    expect(await fsp.readFile(f, "utf8")).toBe("abcdef");
  });

  it("truncate and ftruncate shrink and extend with zeros", async () => {
    const d = await fresh();
    const f = join(d.a, "t");
    await fsp.writeFile(f, Buffer.alloc(3 * 1024 * 1024 + 5, 7));
    await fsp.truncate(f, 1024 * 1024 + 3);
    expect((await fsp.stat(f)).size).toBe(1024 * 1024 + 3);
    const h = await fsp.open(f, "r+");
    await h.truncate(2 * 1024 * 1024);
    await h.close();
    const data = await fsp.readFile(f);
    expect(data.length).toBe(2 * 1024 * 1024);
    expect(data.subarray(0, 1024 * 1024 + 3).every((b) => b === 7)).toBe(true);
    expect(data.subarray(1024 * 1024 + 3).every((b) => b === 0)).toBe(true);
    expect(Buffer.compare(await fsp.readFile(join(d.b, "t")), data)).toBe(0);
  });

  it("partial overwrites inside and across block boundaries", async () => {
    const d = await fresh();
    const f = join(d.a, "p");
    const ref = Buffer.alloc(2.5 * 1024 * 1024);
    for (let i = 0; i < ref.length; i++) ref[i] = i % 251;
    await fsp.writeFile(f, ref);
    const h = await fsp.open(f, "r+");
    const patch = Buffer.alloc(300_000, 0xee);
    await h.write(patch, 0, patch.length, 1024 * 1024 - 1000);
    patch.copy(ref, 1024 * 1024 - 1000);
    await h.close();
    expect(Buffer.compare(await fsp.readFile(join(d.c, "p")), ref)).toBe(0);
  });

  it("sparse files and offsets past 4 GiB", async () => {
    const d = await fresh();
    const f = join(d.a, "sparse");
    const h = await fsp.open(f, "w+");
    const off = 5 * 1024 ** 3 + 123;
    await h.write(Buffer.from("far"), 0, 3, off);
    await h.close();
    const s = await fsp.stat(join(d.b, "sparse"));
    expect(s.size).toBe(off + 3);
    expect(s.blocks * 512).toBeLessThan(4 * 1024 * 1024);
    const r = await fsp.open(join(d.b, "sparse"), "r");
    const buf = Buffer.alloc(8);
    await r.read(buf, 0, 8, off - 5);
    expect(buf.toString("latin1")).toBe("\0\0\0\0\0far");
    const hole = Buffer.alloc(4096, 1);
    await r.read(hole, 0, 4096, 3 * 1024 ** 3);
    expect(hole.every((b) => b === 0)).toBe(true);
    await r.close();
  });

  it("unlink, then ENOENT; unlink of a directory is EISDIR; rmdir of a file is ENOTDIR", async () => {
    const d = await fresh();
    await fsp.writeFile(join(d.a, "f"), "x");
    await fsp.unlink(join(d.a, "f"));
    expect(await code(fsp.stat(join(d.a, "f")))).toBe("ENOENT");
    expect(await code(fsp.unlink(join(d.a, "f")))).toBe("ENOENT");
    await fsp.mkdir(join(d.a, "sub"));
    expect(await code(fsp.unlink(join(d.a, "sub")))).toBe("EISDIR");
    await fsp.writeFile(join(d.a, "g"), "x");
    expect(await code(fsp.rmdir(join(d.a, "g")))).toBe("ENOTDIR");
  });

  it("mkdir EEXIST, rmdir ENOTEMPTY, ENOTDIR in the middle of a path, readdir lists entries", async () => {
    const d = await fresh();
    await fsp.mkdir(join(d.a, "x"));
    expect(await code(fsp.mkdir(join(d.a, "x")))).toBe("EEXIST");
    await fsp.writeFile(join(d.a, "x", "f"), "1");
    expect(await code(fsp.rmdir(join(d.a, "x")))).toBe("ENOTEMPTY");
    expect(await code(fsp.stat(join(d.a, "x", "f", "g")))).toBe("ENOTDIR");
    expect(await code(fsp.stat(join(d.a, "nope", "g")))).toBe("ENOENT");
    expect((await fsp.readdir(join(d.a, "x"))).sort()).toEqual(["f"]);
    await fsp.unlink(join(d.a, "x", "f"));
    await fsp.rmdir(join(d.a, "x"));
    expect(await fsp.readdir(d.a)).toEqual([]);
  });

  it("directory link counts follow subdirectories", async () => {
    const d = await fresh();
    expect((await fsp.stat(d.a)).nlink).toBe(2);
    await fsp.mkdir(join(d.a, "s1"));
    await fsp.mkdir(join(d.a, "s2"));
    expect((await fsp.stat(d.a)).nlink).toBe(4);
  });

  it("opening a directory for writing is EISDIR; reading a directory as a file is EISDIR", async () => {
    const d = await fresh();
    expect(await code(fsp.open(d.a, "w"))).toBe("EISDIR");
    expect(await code(fsp.readFile(d.a))).toBe("EISDIR");
  });

  it("names: any byte but / and NUL, up to 255 bytes; 256 is ENAMETOOLONG", async () => {
    const d = await fresh();
    const names = ["sp ace", "ünïcødé ☃", "a:b*c?d", "\\back", "-dash", ".hidden", "x".repeat(255), "é".repeat(127), "\t\n"];
    for (const n of names) await fsp.writeFile(join(d.a, n), n);
    expect((await fsp.readdir(d.b)).sort()).toEqual([...names].sort());
    for (const n of names) expect(await fsp.readFile(join(d.c, n), "utf8")).toBe(n);
    expect(await code(fsp.writeFile(join(d.a, "x".repeat(256)), ""))).toBe("ENAMETOOLONG");
  });

  it("names that are not UTF-8 (Latin-1, stray bytes, a cut sequence) keep their bytes on every node: create, list, rename, symlink, unlink", async () => {
    const d = await fresh();
    const at = (dir: string, name: Buffer): Buffer => Buffer.concat([Buffer.from(`${dir}/`), name]);
    const names = [Buffer.from("caf\xe9", "latin1"), Buffer.from([0xff, 0xfe]), Buffer.from([0x61, 0xc3, 0x28]), Buffer.from("mix\xe9", "latin1")];
    names.push(Buffer.concat([names[3]!, Buffer.from("é")]));
    for (const n of names) await fsp.writeFile(at(d.a, n), n);
    const sorted = (list: Buffer[]): string[] => list.map((b) => b.toString("hex")).sort();
    expect(sorted(await fsp.readdir(d.b, { encoding: "buffer" }))).toEqual(sorted(names));
    for (const n of names) expect(Buffer.compare(await fsp.readFile(at(d.c, n)), n)).toBe(0);
    const moved = Buffer.from([0x80, 0x2e, 0xfe]);
    await fsp.rename(at(d.b, names[1]!), at(d.b, moved));
    await fsp.symlink(names[0]!, at(d.a, Buffer.from([0x6c, 0xe9])));
    expect(Buffer.compare(await fsp.readlink(at(d.c, Buffer.from([0x6c, 0xe9])), { encoding: "buffer" }), names[0]!)).toBe(0);
    expect(Buffer.compare(await fsp.readFile(at(d.c, Buffer.from([0x6c, 0xe9]))), names[0]!)).toBe(0);
    await fsp.unlink(at(d.c, names[2]!));
    // A sees B's rename and C's unlink.
    const want = sorted([names[0]!, moved, names[3]!, names[4]!, Buffer.from([0x6c, 0xe9])]);
    await eventually(async () => JSON.stringify(sorted(await fsp.readdir(d.a, { encoding: "buffer" }))) === JSON.stringify(want), 5_000);
    expect(sorted(await fsp.readdir(d.a, { encoding: "buffer" }))).toEqual(want);
  });

  it("rename: file, over an existing file (atomic replace), directories, across directories, errors", async () => {
    const d = await fresh();
    await fsp.writeFile(join(d.a, "a"), "A");
    await fsp.writeFile(join(d.a, "b"), "B");
    await fsp.rename(join(d.a, "a"), join(d.a, "b"));
    expect(await fsp.readFile(join(d.a, "b"), "utf8")).toBe("A");
    expect(await code(fsp.stat(join(d.a, "a")))).toBe("ENOENT");
    await fsp.mkdir(join(d.a, "d1"));
    await fsp.mkdir(join(d.a, "d2"));
    await fsp.writeFile(join(d.a, "d1", "in"), "in");
    await fsp.rename(join(d.a, "b"), join(d.a, "d1", "moved"));
    await fsp.rename(join(d.a, "d1"), join(d.a, "d2", "d1"));
    expect((await fsp.readdir(join(d.b, "d2", "d1"))).sort()).toEqual(["in", "moved"]);
    // directory over an empty directory replaces it; over a non-empty one is ENOTEMPTY
    await fsp.mkdir(join(d.a, "empty"));
    await fsp.rename(join(d.a, "d2", "d1"), join(d.a, "empty"));
    expect((await fsp.readdir(join(d.a, "empty"))).sort()).toEqual(["in", "moved"]);
    await fsp.mkdir(join(d.a, "d3"));
    expect(await code(fsp.rename(join(d.a, "d3"), join(d.a, "empty")))).toBe("ENOTEMPTY");
    await fsp.writeFile(join(d.a, "f"), "");
    expect(await code(fsp.rename(join(d.a, "f"), join(d.a, "d3")))).toBe("EISDIR");
    expect(await code(fsp.rename(join(d.a, "d3"), join(d.a, "f")))).toBe("ENOTDIR");
    expect(await code(fsp.rename(join(d.a, "d3"), join(d.a, "d3", "inside")))).toBe("EINVAL");
    expect(await code(fsp.rename(join(d.a, "nope"), join(d.a, "x")))).toBe("ENOENT");
  });

  it("rename never EXDEVs: mv between distant directories is a rename, not a copy", async () => {
    const d = await fresh();
    await fsp.mkdir(join(d.a, "p/q/r"), { recursive: true });
    await fsp.writeFile(join(d.a, "f"), "data");
    const ino = (await fsp.stat(join(d.a, "f"))).ino;
    await fsp.rename(join(d.a, "f"), join(A, "home", "moved-" + seq));
    expect((await fsp.stat(join(A, "home", "moved-" + seq))).ino).toBe(ino);
  });

  it("an unlinked open file stays readable and writable until closed, with no .fuse_hidden litter", async () => {
    const d = await fresh();
    const f = join(d.a, "open");
    await fsp.writeFile(f, "before");
    const h = await fsp.open(f, "r+");
    await fsp.unlink(f);
    expect(await fsp.readdir(d.a)).toEqual([]);
    expect(await fsp.readdir(d.b)).toEqual([]);
    await h.write("AFTER!", 0);
    const buf = Buffer.alloc(6);
    await h.read(buf, 0, 6, 0);
    expect(buf.toString()).toBe("AFTER!");
    expect((await h.stat()).nlink).toBe(0);
    await h.close();
    expect(await fsp.readdir(d.a)).toEqual([]);
    // rename over an open file keeps the old one readable too
    await fsp.writeFile(join(d.a, "old"), "old");
    await fsp.writeFile(join(d.a, "new"), "new");
    const o = await fsp.open(join(d.a, "old"), "r");
    await fsp.rename(join(d.a, "new"), join(d.a, "old"));
    expect((await o.readFile()).toString()).toBe("old");
    await o.close();
    expect(await fsp.readdir(d.a)).toEqual(["old"]);
    expect(await fsp.readFile(join(d.a, "old"), "utf8")).toBe("new");
  });

  it("a file open on one node and unlinked on another stays readable and writable there until closed, then is deleted", async () => {
    const d = await fresh();
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 7);
    await fsp.writeFile(join(d.a, "held"), big);
    const coreA = c.nodes[0]!.mount.core;
    const { ino } = await coreA.stat(`/${d.rel}/held`);
    const h = await fsp.open(join(d.a, "held"), "r+");
    try {
      await fsp.unlink(join(d.b, "held"));
      expect(await code(fsp.stat(join(d.c, "held")))).toBe("ENOENT");
      // B's deletion waits for A: its syncfs and a few of its rounds change nothing for A.
      await c.nodes[1]!.mount.core.sync();
      await new Promise((r) => setTimeout(r, 2_500));
      expect(Buffer.compare(await h.readFile(), big)).toBe(0);
      expect((await h.stat()).size).toBe(big.length);
      await h.write("after the unlink", 0);
      const head = Buffer.alloc(16);
      await h.read(head, 0, 16, 0);
      expect(head.toString()).toBe("after the unlink");
      expect(coreA.meta.inode(ino)?.value.nlink).toBe(0);
      // The name is gone on A too, though A still has the file open.
      expect(await code(fsp.stat(join(d.a, "held")))).toBe("ENOENT");
    } finally {
      // Never left open: this process serves the mount, and would wait on itself at exit.
      await h.close();
    }
    // The last close deletes it, on every node.
    await eventually(async () => c.nodes.every((n) => n.mount.core.meta.inode(ino) === undefined), 10_000);
    expect(await fsp.readdir(d.c)).toEqual([]);
  });

  it("symlink and readlink; dangling links are ENOENT to follow; lstat sees the link", async () => {
    const d = await fresh();
    await fsp.writeFile(join(d.a, "target"), "T");
    await fsp.symlink("target", join(d.a, "l"));
    await fsp.symlink("/nowhere/at/all", join(d.a, "dangling"));
    expect(await fsp.readlink(join(d.b, "l"))).toBe("target");
    expect(await fsp.readFile(join(d.b, "l"), "utf8")).toBe("T");
    expect((await fsp.lstat(join(d.a, "l"))).isSymbolicLink()).toBe(true);
    expect(await code(fsp.stat(join(d.a, "dangling")))).toBe("ENOENT");
    expect(await code(fsp.readlink(join(d.a, "target")))).toBe("EINVAL");
    expect(await code(fsp.symlink("x", join(d.a, "l")))).toBe("EEXIST");
  });

  it("hard links share the inode and count links on every node", async () => {
    const d = await fresh();
    await fsp.writeFile(join(d.a, "f"), "shared");
    await fsp.link(join(d.a, "f"), join(d.a, "g"));
    const [sf, sg] = [await fsp.stat(join(d.b, "f")), await fsp.stat(join(d.b, "g"))];
    expect(sf.ino).toBe(sg.ino);
    expect(sf.nlink).toBe(2);
    await fsp.writeFile(join(d.c, "g"), "changed");
    expect(await fsp.readFile(join(d.a, "f"), "utf8")).toBe("changed");
    await fsp.unlink(join(d.a, "f"));
    expect((await fsp.stat(join(d.c, "g"))).nlink).toBe(1);
    expect(await code(fsp.link(d.a, join(d.a, "dirlink")))).toBe("EPERM");
    expect(await code(fsp.link(join(d.a, "g"), join(d.a, "g")))).toBe("EEXIST");
  });

  it("chmod, chown, utimens are seen on other nodes", async () => {
    const d = await fresh();
    const f = join(d.a, "f");
    await fsp.writeFile(f, "x");
    await fsp.chmod(f, 0o640);
    await fsp.chown(f, 1234, 5678);
    const t = new Date("2020-01-02T03:04:05.678Z");
    await fsp.utimes(f, t, t);
    const s = await fsp.stat(join(d.b, "f"));
    expect(s.mode & 0o7777).toBe(0o640);
    expect([s.uid, s.gid]).toEqual([1234, 5678]);
    // fuse-native carries times in whole milliseconds and truncates: ±1 ms
    expect(Math.abs(s.mtimeMs - t.getTime())).toBeLessThanOrEqual(1);
  });

  it("utimensat: atime and mtime as given, UTIME_OMIT keeps one, UTIME_NOW is now, AT_SYMLINK_NOFOLLOW sets the link's own", async () => {
    const d = await fresh();
    const f = join(d.a, "f");
    await fsp.writeFile(f, "x");
    await fsp.utimes(f, 1_900_000_000, 1_950_000_000);
    const s = await fsp.stat(join(d.b, "f"));
    expect([s.atimeMs, s.mtimeMs]).toEqual([1_900_000_000_000, 1_950_000_000_000]);
    // touch -a: the mtime is UTIME_OMIT; touch -m: the atime; touch -a without a time: UTIME_NOW.
    const r = await sh("touch -a -d @1800000000 f && stat -c '%X %Y' f && touch -m -d @1700000000 f && stat -c '%X %Y' f && touch -a f && stat -c '%X %Y' f", { cwd: d.a });
    const [afterA, afterM, afterNow] = r.stdout.trim().split("\n");
    expect([afterA, afterM]).toEqual(["1800000000 1950000000", "1800000000 1700000000"]);
    const [nowA, keptM] = afterNow!.split(" ").map(Number);
    expect(Math.abs(nowA! - Date.now() / 1000)).toBeLessThan(30);
    expect(keptM).toBe(1_700_000_000);
    // touch -h on a symbolic link: its own times; the target keeps its own.
    await fsp.symlink("f", join(d.a, "l"));
    const h = await sh("touch -h -d @1600000000 l && stat -c '%Y' l && stat -c '%Y' f", { cwd: d.a });
    expect(h.stdout).toBe("1600000000\n1700000000\n");
  });

  it("nanosecond times: touch -d and utimensat keep them as set, on files and directories, seen from another node; UTIME_OMIT keeps them", async () => {
    const d = await fresh();
    const f = join(d.a, "f");
    await fsp.writeFile(f, "x");
    // touch with nanoseconds on n1, stat on n3.
    await sh("touch -d '2031-01-02 03:04:05.123456789 UTC' f", { cwd: d.a });
    expect((await sh("stat -c '%x|%y' f", { cwd: d.c })).stdout.trim()).toBe("2031-01-02 03:04:05.123456789 +0000|2031-01-02 03:04:05.123456789 +0000");
    // utimensat with different nanoseconds for each, then touch -m keeps the atime's.
    const py = (dir: string, code: string): Promise<{ stdout: string }> => sh(`python3 -c "${code}"`, { cwd: dir });
    await py(d.a, "import os; os.utime('f', ns=(1900000000987654321, 1950000000000000001))");
    expect((await py(d.c, "import os; s=os.stat('f'); print(s.st_atime_ns, s.st_mtime_ns)")).stdout.trim()).toBe("1900000000987654321 1950000000000000001");
    await sh("touch -m -d @1700000000.5 f", { cwd: d.a });
    expect((await py(d.b, "import os; s=os.stat('f'); print(s.st_atime_ns, s.st_mtime_ns)")).stdout.trim()).toBe("1900000000987654321 1700000000500000000");
    // A directory's mtime too; a create in it later moves it to now.
    await fsp.mkdir(join(d.a, "sub"));
    await sh("touch -d @1600000000.000000007 sub", { cwd: d.a });
    expect((await py(d.c, "import os; print(os.stat('sub').st_mtime_ns)")).stdout.trim()).toBe("1600000000000000007");
    await fsp.writeFile(join(d.a, "sub", "g"), "y");
    expect((await fsp.stat(join(d.b, "sub"))).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
  });

  it("atime follows relatime: the first read after a change moves it to now, on the reading node and the others; later ones do not", async () => {
    const d = await fresh();
    const atime = async (mp: string): Promise<number> => (await fsp.stat(join(mp, "f"))).atimeMs;
    await fsp.writeFile(join(d.a, "f"), "hello");
    // Before the mtime: the next read moves it (the first rule).
    await fsp.utimes(join(d.a, "f"), 1_500_000_000, 1_600_000_000);
    // (times are kept in ms: a read in the ms of the utimes' ctime would be due again)
    const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 10));
    await tick();
    const before = Date.now() - 5;
    expect(await fsp.readFile(join(d.a, "f"), "utf8")).toBe("hello");
    const moved = await atime(d.a);
    expect(moved).toBeGreaterThanOrEqual(before);
    await eventually(async () => ((await atime(d.c)) === moved ? true : undefined), 5_000, "the new atime on C");
    // After the mtime and ctime, and less than a day old: reads leave it.
    await tick();
    await fsp.readFile(join(d.a, "f"));
    await fsp.readFile(join(d.b, "f"));
    expect(await atime(d.a)).toBe(moved);
    // A read on another node than the one working in the directory moves it too, for every node (new
    // bytes, so B reads them through CloudFS: a read from B's page cache moves no atime, as on NFS).
    await fsp.writeFile(join(d.a, "f"), "hello again");
    await fsp.utimes(join(d.a, "f"), 1_500_000_000, 1_700_000_000);
    await eventually(async () => ((await atime(d.b)) === 1_500_000_000_000 ? true : undefined), 5_000, "the old atime on B");
    await tick();
    const beforeB = Date.now() - 5;
    expect(await fsp.readFile(join(d.b, "f"), "utf8")).toBe("hello again");
    expect(await atime(d.b)).toBeGreaterThanOrEqual(beforeB);
    for (const mp of [d.a, d.c]) await eventually(async () => ((await atime(mp)) >= beforeB ? true : undefined), 5_000, `B's read seen at ${mp}`);
  });

  it("a directory's mtime and ctime change on create, unlink, link and rename in it, seen from another node; utimensat sets its mtime", async () => {
    const d = await fresh();
    const other = await fresh();
    const times = async (dir: string): Promise<[number, number]> => {
      const st = await fsp.stat(dir);
      return [st.mtimeMs, st.ctimeMs];
    };
    const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 15));
    // Each step on A must move both times forward as B sees them.
    const step = async (what: string, seenFrom: string, change: () => Promise<unknown>): Promise<void> => {
      const [m0, c0] = await times(seenFrom);
      await tick();
      await change();
      const [m1, c1] = await times(seenFrom);
      expect({ what, later: m1 > m0 && c1 > c0 }).toEqual({ what, later: true });
    };
    await step("create", d.b, () => fsp.writeFile(join(d.a, "f"), "x"));
    await step("mkdir", d.b, () => fsp.mkdir(join(d.a, "sub")));
    await step("link", d.b, () => fsp.link(join(d.a, "f"), join(d.a, "g")));
    await step("unlink", d.b, () => fsp.unlink(join(d.a, "g")));
    await step("rmdir", d.b, () => fsp.rm(join(d.a, "sub"), { recursive: true }));
    await step("rename out (source)", d.b, () => fsp.rename(join(d.a, "f"), join(other.a, "f")));
    await step("rename in (target)", d.c, () => fsp.rename(join(other.a, "f"), join(d.a, "f2")));
    // Set as given (touch -d), then a create moves it on again.
    await fsp.utimes(d.a, new Date(1_500_000_000_000), new Date(1_600_000_000_000));
    expect((await fsp.stat(d.b)).mtimeMs).toBe(1_600_000_000_000);
    await fsp.writeFile(join(d.a, "h"), "y");
    expect((await fsp.stat(d.c)).mtimeMs).toBeGreaterThan(1_600_000_000_000);
  });

  it("chmod and chown through one hard link are seen under its other name at once, on the same node", async () => {
    const d = await fresh();
    await fsp.writeFile(join(d.a, "a"), "x");
    await fsp.link(join(d.a, "a"), join(d.a, "b"));
    // The kernel has cached b's attributes (a name of its own, with its own node id).
    expect((await fsp.stat(join(d.a, "b"))).mode & 0o777).toBe(0o644);
    await fsp.chmod(join(d.a, "a"), 0o600);
    await fsp.chown(join(d.a, "a"), 1234, 5678);
    const b = await fsp.lstat(join(d.a, "b"));
    expect(b.mode & 0o777).toBe(0o600);
    expect([b.uid, b.gid]).toEqual([1234, 5678]);
  });

  it("special files: mkfifo, mknod and an AF_UNIX socket's bind make them on every node; a FIFO and a socket work between processes of one node", async () => {
    const d = await fresh();
    const fifo = await sh("mkfifo p && (echo through-the-fifo > p &) && cat p && mknod dev c 1 3 && stat -c '%F %t,%T' dev && stat -c '%F' p", { cwd: d.a });
    expect(fifo.stderr).toBe("");
    expect(fifo.stdout).toBe("through-the-fifo\ncharacter special file 1,3\nfifo\n");
    const unix = await sh(
      [
        "python3 - <<'PY'",
        "import socket, threading",
        "server = socket.socket(socket.AF_UNIX)",
        "server.bind('sock')",
        "server.listen(1)",
        "def serve():",
        "    conn, _ = server.accept()",
        "    conn.sendall(conn.recv(100).upper())",
        "    conn.close()",
        "threading.Thread(target=serve).start()",
        "client = socket.socket(socket.AF_UNIX)",
        "client.connect('sock')",
        "client.sendall(b'hello')",
        "print(client.recv(100).decode())",
        "PY",
      ].join("\n"),
      { cwd: d.a },
    );
    expect(unix.stderr).toBe("");
    expect(unix.stdout).toBe("HELLO\n");
    for (const dir of [d.b, d.c]) {
      expect((await fsp.lstat(join(dir, "p"))).isFIFO()).toBe(true);
      expect((await fsp.lstat(join(dir, "sock"))).isSocket()).toBe(true);
      const dev = await fsp.lstat(join(dir, "dev"));
      expect(dev.isCharacterDevice()).toBe(true);
      expect(dev.rdev).toBe(0x103);
    }
    // Plain files and the rest of the tree treat them as names: rm, mv.
    const rest = await sh("mv p p2 && rm p2 sock dev && ls -A", { cwd: d.b });
    expect(rest.stdout).toBe("");
  });

  it("extended attributes: user.* set, get, list and remove, seen from every node, with Linux's errnos; ACLs refused; cp -a keeps them", async () => {
    const d = await fresh();
    await fsp.writeFile(join(d.a, "f"), "x");
    const py = (script: string, cwd: string) => sh(`python3 - <<'PY'\nimport os, errno, ctypes\n${script}\nPY`, { cwd });
    const set = await py(
      [
        "os.setxattr('f', 'user.color', b'blue')",
        "os.setxattr('f', 'user.bin', bytes(range(256)))",
        "def err(f):",
        "    try:",
        "        f(); return 'ok'",
        "    except OSError as e: return errno.errorcode[e.errno]",
        "print(err(lambda: os.setxattr('f', 'user.color', b'red', os.XATTR_CREATE)))",
        "print(err(lambda: os.setxattr('f', 'user.none', b'x', os.XATTR_REPLACE)))",
        "print(err(lambda: os.setxattr('f', 'system.posix_acl_access', b'\\x02\\x00\\x00\\x00')))",
        "print(err(lambda: os.getxattr('f', 'user.missing')))",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "small = ctypes.create_string_buffer(2)",
        "print(libc.getxattr(b'f', b'user.color', None, 0), libc.getxattr(b'f', b'user.color', small, 2), errno.errorcode[ctypes.get_errno()])",
      ].join("\n"),
      d.a,
    );
    expect(set.stderr).toBe("");
    // EOPNOTSUPP is ENOTSUP on Linux (95), which is the name Python gives it.
    expect(set.stdout).toBe("EEXIST\nENODATA\nENOTSUP\nENODATA\n4 -1 ERANGE\n");
    // Every node sees them; one removes one; cp -a on a third copies what is left.
    const seen = await py("print(sorted(os.listxattr('f')), os.getxattr('f', 'user.color'), os.getxattr('f', 'user.bin') == bytes(range(256)))", d.b);
    expect(seen.stdout).toBe("['user.bin', 'user.color'] b'blue' True\n");
    await py("os.removexattr('f', 'user.bin')", d.c);
    const copied = await sh("cp -a f g && python3 -c \"import os; print(os.listxattr('g'), os.getxattr('g', 'user.color'))\"", { cwd: d.a });
    expect(copied.stdout).toBe("['user.color'] b'blue'\n");
  });

  it("statfs reports a file system; fsync succeeds; access checks modes", async () => {
    const d = await fresh();
    const s = await fsp.statfs(A);
    expect(s.bsize).toBeGreaterThan(0);
    expect(s.blocks).toBeGreaterThan(0);
    const h = await fsp.open(join(d.a, "f"), "w");
    await h.write("durable");
    await h.sync();
    await h.datasync();
    await h.close();
    await fsp.chmod(join(d.a, "f"), 0o444);
    await fsp.access(join(d.a, "f"), constants.R_OK);
    expect(await code(fsp.access(join(d.a, "f"), constants.X_OK))).toBe("EACCES");
  });

  it("permissions are enforced for non-root users, also across nodes", async () => {
    const d = await fresh();
    await fsp.mkdir(join(d.a, "private"), { mode: 0o700 });
    await fsp.chown(join(d.a, "private"), 1000, 1000);
    await fsp.writeFile(join(d.a, "private", "secret"), "s");
    await fsp.chown(join(d.a, "private", "secret"), 1000, 1000);
    await fsp.writeFile(join(d.a, "ro"), "r");
    // uid 1001 on node B: cannot enter uid 1000's 0700 directory, cannot write a root 0644 file
    let r = await sh(`cat ${join(d.b, "private", "secret")}`, { uid: 1001, gid: 1001 });
    expect(r.stderr).toMatch(/Permission denied/);
    r = await sh(`echo x >> ${join(d.c, "ro")}`, { uid: 1001, gid: 1001 });
    expect(r.stderr).toMatch(/Permission denied/);
    r = await sh(`touch ${join(d.b, "newfile")}`, { uid: 1001, gid: 1001 });
    expect(r.stderr).toMatch(/Permission denied/);
    r = await sh(`chmod 777 ${join(d.b, "ro")}`, { uid: 1001, gid: 1001 });
    expect(r.stderr).toMatch(/Operation not permitted/);
    // the owner, on node C, can
    r = await sh(`cat ${join(d.c, "private", "secret")}`, { uid: 1000, gid: 1000 });
    expect(r).toMatchObject({ code: 0, stdout: "s" });
    r = await sh(`echo more >> ${join(d.c, "private", "secret")} && cat ${join(d.c, "private", "secret")}`, { uid: 1000, gid: 1000 });
    expect(r.stdout).toBe("smore\n");
  });

  // Needs CloudFS's fuse-native build (`node vfs-fuse/native/build.mjs`): stock fuse-native hides the caller.
  it.skipIf(!FUSE_KNOWS_CALLER)("files and directories a user creates through the mount belong to that user, on every node", async () => {
    const d = await fresh();
    await fsp.chown(d.a, 1000, 1000);
    let r = await sh(`cd ${d.a} && mkdir sub && echo a > sub/f && echo b >> sub/f && ln -s f sub/l && stat -c '%u:%g' sub sub/f && cat sub/f`, { uid: 1000, gid: 1000 });
    expect(r).toMatchObject({ code: 0, stdout: "1000:1000\n1000:1000\na\nb\n" });
    expect((await fsp.lstat(join(d.b, "sub", "l"))).uid).toBe(1000);
    r = await sh(`echo x >> ${join(d.c, "sub", "f")}`, { uid: 1001, gid: 1001 });
    expect(r.stderr).toMatch(/Permission denied/);
  });
});

describe("CloudFS across nodes", () => {
  it("close-to-open: bytes and size written and closed on A are read on B and C right after", async () => {
    const d = await fresh();
    for (let round = 0; round < 5; round++) {
      const data = Buffer.alloc(100_000 + round * 300_000, 65 + round);
      await fsp.writeFile(join(d.a, "f"), data);
      for (const node of [d.b, d.c]) {
        const got = await fsp.readFile(join(node, "f"));
        expect(got.length).toBe(data.length);
        expect(Buffer.compare(got, data)).toBe(0);
      }
    }
  });

  it("a new file, a rename and an unlink on one node show in listings on the others within 1 s", async () => {
    const d = await fresh();
    await fsp.writeFile(join(d.a, "one"), "1");
    const seen = await eventually(async () => (await fsp.readdir(d.b)).includes("one"), 1000);
    expect(seen).toBeLessThan(1000);
    await fsp.rename(join(d.b, "one"), join(d.b, "two"));
    await eventually(async () => JSON.stringify(await fsp.readdir(d.c)) === '["two"]', 1000);
    await eventually(async () => JSON.stringify(await fsp.readdir(d.a)) === '["two"]', 1000);
    await fsp.unlink(join(d.c, "two"));
    await eventually(async () => (await fsp.readdir(d.a)).length === 0, 1000);
    expect(await code(fsp.readFile(join(d.a, "two")))).toBe("ENOENT");
  });

  it("attributes and names the kernel caches are dropped when another node changes them", async () => {
    // With CloudFS's fuse-native build the kernel keeps attributes and names for 10 s; without the
    // invalidations each stat on B below would see the old answer for that long.
    expect(DEFAULT_FUSE_TUNING.attrTimeoutSec).toBe(FUSE_KNOWS_CALLER ? 10 : 0);
    const d = await fresh();
    await fsp.writeFile(join(d.a, "f"), "x".repeat(10));
    expect((await fsp.stat(join(d.b, "f"))).size).toBe(10);
    // Close-to-open: an open on B right after A's close sees the new size, whatever B's kernel had.
    await fsp.writeFile(join(d.a, "f"), "y".repeat(7000));
    const fh = await fsp.open(join(d.b, "f"), "r");
    expect((await fh.stat()).size).toBe(7000);
    expect((await fh.readFile("utf8")).length).toBe(7000);
    await fh.close();
    // A plain stat, with no open: the watch's invalidation.
    await fsp.writeFile(join(d.a, "f"), "z".repeat(5000));
    await eventually(async () => (await fsp.stat(join(d.b, "f"))).size === 5000, 1000);
    await fsp.chmod(join(d.a, "f"), 0o600);
    await eventually(async () => ((await fsp.stat(join(d.b, "f"))).mode & 0o777) === 0o600, 1000);
    // A name B's kernel resolved: renamed away on A, it is gone on B too.
    await fsp.rename(join(d.a, "f"), join(d.a, "g"));
    await eventually(async () => (await code(fsp.stat(join(d.b, "f")))) === "ENOENT", 1000);
    expect((await fsp.stat(join(d.b, "g"))).size).toBe(5000);
    // Replaced by another file: B's cached name now leads to the new inode.
    await fsp.writeFile(join(d.a, "h"), "new");
    const before = (await fsp.stat(join(d.b, "g"))).ino;
    await fsp.rename(join(d.a, "h"), join(d.a, "g"));
    await eventually(async () => (await fsp.stat(join(d.b, "g"))).ino !== before, 1000);
    expect(await fsp.readFile(join(d.b, "g"), "utf8")).toBe("new");
    // Hard links: the kernel knows the inode under each name; a change reaches both.
    await fsp.link(join(d.a, "g"), join(d.a, "l"));
    expect((await fsp.stat(join(d.b, "g"))).nlink).toBe(2);
    expect((await fsp.stat(join(d.b, "l"))).size).toBe(3);
    await fsp.appendFile(join(d.a, "l"), "er");
    await eventually(async () => (await fsp.stat(join(d.b, "g"))).size === 5 && (await fsp.stat(join(d.b, "l"))).size === 5, 1000);
    // A directory's link count follows subdirectories made elsewhere.
    const links = (await fsp.stat(d.b)).nlink;
    await fsp.mkdir(join(d.a, "sub"));
    await eventually(async () => (await fsp.stat(d.b)).nlink === links + 1, 1000);
  });

  it("a node's catch-up with a directory's holder stands only until the holder changes it: a name B just missed is there right after A's create", async () => {
    const d = await fresh();
    await fsp.writeFile(join(d.a, "seed"), "s");
    for (let i = 0; i < 30; i++) {
      // B asks A about the directory (and so may answer from its replica for a while)...
      expect(await code(fsp.stat(join(d.b, `n${i}`)))).toBe("ENOENT");
      expect((await fsp.stat(join(d.b, "seed"))).size).toBe(i === 0 ? 1 : i);
      // ...until A changes it: the notice ends that at once.
      await fsp.writeFile(join(d.a, `n${i}`), "x");
      await fsp.writeFile(join(d.a, "seed"), "s".repeat(i + 1));
      expect(await fsp.readFile(join(d.b, `n${i}`), "utf8")).toBe("x");
      expect((await fsp.stat(join(d.b, "seed"))).size).toBe(i + 1);
    }
  });

  it("an atomic save (write aside, rename over) on A is what B opens right after, every time", async () => {
    const d = await fresh();
    // C's core, without its kernel in between (as the web desktop reads CloudFS).
    const coreC = c.nodes[2]!.mount.core;
    await fsp.writeFile(join(d.a, "doc"), "v0");
    for (let i = 1; i <= 20; i++) {
      // C first: the first to look after A's save, so A stores it for C's asking.
      expect((await coreC.readFile(`/${d.rel}/doc`)).toString()).toBe(`v${i - 1}`);
      expect(await fsp.readFile(join(d.b, "doc"), "utf8")).toBe(`v${i - 1}`);
      await fsp.writeFile(join(d.a, `.doc.tmp${i}`), `v${i}`);
      await fsp.rename(join(d.a, `.doc.tmp${i}`), join(d.a, "doc"));
    }
    expect(await fsp.readFile(join(d.b, "doc"), "utf8")).toBe("v20");
    expect(await fsp.readFile(join(d.c, "doc"), "utf8")).toBe("v20");
  });

  it("two nodes racing O_CREAT|O_EXCL on one name: exactly one wins", async () => {
    const d = await fresh();
    for (let round = 0; round < 10; round++) {
      const name = `race${round}`;
      const results = await Promise.allSettled(
        [d.a, d.b, d.c].map((dir) => fsp.open(join(dir, name), constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY)),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won.length).toBe(1);
      for (const r of results) {
        if (r.status === "rejected") expect((r.reason as NodeJS.ErrnoException).code).toBe("EEXIST");
        else await r.value.close();
      }
    }
    expect((await fsp.readdir(d.a)).length).toBe(10);
  });

  it("concurrent chmods and writes from different nodes lose no update", async () => {
    const d = await fresh();
    await fsp.writeFile(join(d.a, "f"), "x");
    await Promise.all([
      fsp.chmod(join(d.a, "f"), 0o600),
      fsp.chown(join(d.b, "f"), 42, 43),
    ]);
    const s = await fsp.stat(join(d.c, "f"));
    expect(s.mode & 0o777).toBe(0o600);
    expect(s.uid).toBe(42);
  });

  it("read-modify-write of one inode from three nodes at once loses no update (its lease makes one writer at a time)", async () => {
    const d = await fresh();
    await fsp.writeFile(join(d.a, "counter"), "");
    const ino = (await fsp.stat(join(d.a, "counter"))).ino;
    // Each node has seen the file (close-to-open) before its CloudFS is asked to change it.
    for (const p of [d.b, d.c]) expect((await fsp.stat(join(p, "counter"))).ino).toBe(ino);
    const before = c.nodes[0]!.mount.core.meta.inode(ino)!.value.atimeMs;
    await Promise.all(
      c.nodes.flatMap((n) =>
        Array.from({ length: 15 }, () => n.mount.core.mutateInode(ino, (r) => void (r.atimeMs += 1))),
      ),
    );
    await Promise.all(c.nodes.map((n) => n.mount.core.sync()));
    const after = await c.nodes[1]!.mount.core.meta.fetchInode(ino);
    expect(after!.value.atimeMs - before).toBe(45);
  });

  it("a file larger than the block cache (256 MiB) is written and read back", async () => {
    const d = await fresh();
    const r = await sh(
      `head -c 300000000 /dev/urandom > /tmp/cfs-big-ref && cp /tmp/cfs-big-ref ${join(d.a, "big")} && cmp /tmp/cfs-big-ref ${join(d.b, "big")} && cmp /tmp/cfs-big-ref ${join(d.a, "big")} && rm /tmp/cfs-big-ref && echo same`,
      { timeoutMs: 110_000 },
    );
    expect(r.stdout.trim()).toBe("same");
    await fsp.unlink(join(d.a, "big"));
  });
});
