import * as fsp from "node:fs/promises";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startCloudFsCluster, startFsDaemon, unmountStale, type CloudFsTestCluster, type FsDaemon } from "./cloudfs-cluster.js";

/*
 * File locks across nodes (vfs-fuse/locks.ts): flock(2), fcntl byte ranges and F_GETLK, release when
 * the holder dies or its node is lost, and two sqlite writers on two nodes. The lockers are Python
 * processes on the host, each using one node's mount (as processes on three machines would).
 */
let c: CloudFsTestCluster;
let A: string;
let B: string;
let C: string;
let script: string;
const daemons = new Set<FsDaemon>();
const children = new Set<ChildProcess>();

beforeAll(async () => {
  c = await startCloudFsCluster(3, { journal: true });
  [A, B, C] = c.nodes.map((n) => join(n.mp, "home", "locks")) as [string, string, string];
  await fsp.mkdir(A);
  script = join(c.dir, "locker.py");
  await fsp.writeFile(script, LOCKER);
});
afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const d of daemons) {
    await d.kill("SIGKILL");
    await unmountStale(d.mp);
  }
  await c?.close();
});

/**
 * Takes a lock and holds it until `release` (or prints why not and exits):
 * `flock-ex`, `flock-ex-nb`, `flock-sh-nb`, `range START LEN wait|nb`, `ofd START LEN` (a line on stdin
 * closes the file first), `getlk START LEN`.
 */
const LOCKER = `
import fcntl, struct, sys
path, op = sys.argv[1], sys.argv[2]
f = open(path, "r+")
def out(s): print(s, flush=True)
try:
    if op == "flock-ex": fcntl.flock(f, fcntl.LOCK_EX)
    elif op == "flock-ex-nb": fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    elif op == "flock-sh-nb": fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    elif op == "range":
        fcntl.lockf(f, fcntl.LOCK_EX | (fcntl.LOCK_NB if sys.argv[5] == "nb" else 0), int(sys.argv[4]), int(sys.argv[3]))
    elif op == "ofd":
        fcntl.fcntl(f, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, int(sys.argv[3]), int(sys.argv[4]), 0))
        out("locked")
        # Closing this open file description (not the process) ends its lock.
        sys.stdin.readline()
        f.close()
        out("closed")
    elif op == "getlk":
        r = fcntl.fcntl(f, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, int(sys.argv[3]), int(sys.argv[4]), 0))
        t, w, s, l, p = struct.unpack("hhqqi", r)
        out(f"getlk {t} {s} {l} {p}")
        sys.exit(0)
    out("locked")
except OSError as e:
    out(f"busy {e.errno}")
    sys.exit(0)
sys.stdin.readline()
`;

interface Locker {
  readonly child: ChildProcess;
  /** The first line it printed: "locked", "busy ERRNO" or "getlk TYPE START LEN PID". */
  readonly said: Promise<string>;
  /** Lets the lock go (the process exits) and waits for it. */
  release(): Promise<void>;
}

function locker(path: string, ...args: string[]): Locker {
  const child = spawn("python3", [script, path, ...args], { stdio: ["pipe", "pipe", "inherit"] });
  children.add(child);
  const exited = new Promise<void>((r) => child.once("exit", () => (children.delete(child), r())));
  const said = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    void exited.then(() => reject(new Error(`locker ${args.join(" ")} exited without a word`)));
  });
  return {
    child,
    said,
    async release() {
      child.stdin!.end("\n");
      await exited;
    },
  };
}

/** What a locker that does not hold on says (it exits at once when its stdin closes). */
async function attempt(path: string, ...args: string[]): Promise<string> {
  const l = locker(path, ...args);
  const said = await l.said;
  await l.release();
  return said;
}

/** Runs python3 with `args` to its end: what it printed (stdout and stderr), or a rejection saying both. */
function python(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn("python3", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    p.once("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`python3 ${args[0]}: exit ${code}: ${out}`))));
  });
}

/** Whether `p` settles within `ms`. */
const settlesWithin = (p: Promise<unknown>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe("CloudFS locks across nodes", () => {
  it("flock: LOCK_NB fails with EWOULDBLOCK on another node, a blocked LOCK_EX gets the lock when the holder lets go, shared locks share", async () => {
    await fsp.writeFile(join(A, "f"), "x");
    const holder = locker(join(A, "f"), "flock-ex");
    expect(await holder.said).toBe("locked");
    expect(await attempt(join(B, "f"), "flock-ex-nb")).toBe("busy 11");
    const waiter = locker(join(B, "f"), "flock-ex");
    expect(await settlesWithin(waiter.said, 1500)).toBe(false);
    await holder.release();
    expect(await waiter.said).toBe("locked");
    expect(await attempt(join(C, "f"), "flock-ex-nb")).toBe("busy 11");
    await waiter.release();
    const s1 = locker(join(A, "f"), "flock-sh-nb");
    const s3 = locker(join(C, "f"), "flock-sh-nb");
    expect([await s1.said, await s3.said]).toEqual(["locked", "locked"]);
    expect(await attempt(join(B, "f"), "flock-ex-nb")).toBe("busy 11");
    await Promise.all([s1.release(), s3.release()]);
    expect(await attempt(join(B, "f"), "flock-ex-nb")).toBe("locked");
  });

  it("fcntl locks hold byte ranges across nodes, F_GETLK names the conflicting lock, and a holder killed lets its locks go", async () => {
    await fsp.writeFile(join(A, "g"), "0123456789abcdefghijklmnopqrstuvwxyz");
    const holder = locker(join(A, "g"), "range", "0", "10", "nb");
    expect(await holder.said).toBe("locked");
    expect(await attempt(join(B, "g"), "range", "5", "10", "nb")).toBe("busy 11");
    expect(await attempt(join(B, "g"), "range", "20", "5", "nb")).toBe("locked");
    // F_WRLCK (1) over bytes 0-9; a process of another node has no pid there (0), one of the holder's node has its own.
    expect(await attempt(join(C, "g"), "getlk", "0", "0")).toBe("getlk 1 0 10 0");
    expect(await attempt(join(A, "g"), "getlk", "0", "0")).toBe(`getlk 1 0 10 ${holder.child.pid}`);
    const waiter = locker(join(C, "g"), "range", "0", "1", "wait");
    expect(await settlesWithin(waiter.said, 1000)).toBe(false);
    holder.child.kill("SIGKILL");
    expect(await waiter.said).toBe("locked");
    await waiter.release();
    expect(await attempt(join(B, "g"), "getlk", "0", "0")).toBe("getlk 2 0 0 0");
  });

  it("a blocked lock request ends with EINTR when a signal comes to its caller, and holds nothing after; a signal that kills the waiter ends it at once", async () => {
    await fsp.writeFile(join(A, "i"), "x");
    const holder = locker(join(A, "i"), "flock-ex");
    expect(await holder.said).toBe("locked");
    // A handler that raises: Python gives up the wait (it retries EINTR itself otherwise, as SA_RESTART would).
    const waitWithAlarm = (path: string, how: string): Promise<string> =>
      python(
        "-c",
        [
          "import fcntl, signal, sys, time",
          "f = open(sys.argv[1], 'r+')",
          "class Alarm(Exception): pass",
          "def ring(*_): raise Alarm()",
          "signal.signal(signal.SIGALRM, ring)",
          "signal.alarm(1)",
          "t = time.time()",
          "try:",
          `    ${how}`,
          "    print('locked')",
          "except Alarm:",
          "    print('interrupted' if time.time() - t < 4 else 'late')",
        ].join("\n"),
        path,
      );
    expect(await waitWithAlarm(join(B, "i"), "fcntl.flock(f, fcntl.LOCK_EX)")).toBe("interrupted");
    expect(await waitWithAlarm(join(C, "i"), "fcntl.flock(f, fcntl.LOCK_SH)")).toBe("interrupted");
    await fsp.writeFile(join(A, "j"), "0123456789");
    const ranged = locker(join(A, "j"), "range", "0", "4", "nb");
    expect(await ranged.said).toBe("locked");
    expect(await waitWithAlarm(join(B, "j"), "fcntl.lockf(f, fcntl.LOCK_EX, 2, 0)")).toBe("interrupted");
    // SIGTERM to util-linux flock(1) waiting on another node: it dies now, not when the lock is let go.
    const waiter = spawn("flock", ["-x", join(C, "i"), "-c", "true"], { stdio: "ignore" });
    children.add(waiter);
    const ended = new Promise<NodeJS.Signals | null>((r) => waiter.once("exit", (_code, signal) => r(signal)));
    expect(await settlesWithin(ended, 800)).toBe(false);
    waiter.kill("SIGTERM");
    expect(await settlesWithin(ended, 3000)).toBe(true);
    expect(await ended).toBe("SIGTERM");
    // None of the interrupted waiters was granted its lock later.
    await holder.release();
    await ranged.release();
    expect(await attempt(join(B, "i"), "flock-ex-nb")).toBe("locked");
    expect(await attempt(join(C, "j"), "range", "0", "10", "nb")).toBe("locked");
  });

  it("an OFD lock holds across nodes and ends when its open file is closed, while the process lives on", async () => {
    await fsp.writeFile(join(A, "o"), "0123456789");
    const holder = locker(join(A, "o"), "ofd", "0", "4");
    expect(await holder.said).toBe("locked");
    expect(await attempt(join(B, "o"), "range", "2", "1", "nb")).toBe("busy 11");
    const lines = createInterface({ input: holder.child.stdout! });
    const closed = new Promise<string>((r) => lines.once("line", r));
    holder.child.stdin!.write("\n");
    expect(await closed).toBe("closed");
    expect(await attempt(join(B, "o"), "range", "2", "1", "nb")).toBe("locked");
    await holder.release();
  });

  it("a lock of a node that is lost holds no more once its liveness lapses", async () => {
    const d = await startFsDaemon({ nats: c.nats.urls[0]!, mount: join(c.dir, "mnt-lost"), cache: join(c.dir, "cache-lost"), journal: join(c.dir, "journal-lost"), nodeId: "lost" });
    daemons.add(d);
    await fsp.writeFile(join(A, "h"), "x");
    const holder = locker(join(d.mp, "home", "locks", "h"), "flock-ex");
    expect(await holder.said).toBe("locked");
    expect(await attempt(join(B, "h"), "flock-ex-nb")).toBe("busy 11");
    // The node is lost: its daemon dies, and the process that held the lock with it.
    await d.kill("SIGKILL");
    daemons.delete(d);
    holder.child.kill("SIGKILL");
    await unmountStale(d.mp);
    // Within the node-loss bound: its liveness record is older than the lease TTL (6 s) after that.
    await eventually(async () => (await attempt(join(B, "h"), "flock-ex-nb")) === "locked", 20_000);
  });

  it("open(O_CREAT) of one new name on two nodes at once opens one file on both (no EEXIST without O_EXCL)", async () => {
    const opener = [
      "import os, sys, time",
      "while time.time() < float(sys.argv[2]): pass",
      "fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)",
      "print(os.fstat(fd).st_ino, flush=True)",
      "os.close(fd)",
    ].join("\n");
    const run = (path: string, at: number): Promise<string> => python("-c", opener, path, String(at));
    for (let round = 0; round < 10; round++) {
      const name = `race-${round}`;
      // Both start at the same moment, one on n1 and one on n2; both get the one inode the name has.
      const at = Date.now() / 1000 + 0.3;
      const inos = await Promise.all([run(join(A, name), at), run(join(B, name), at)]);
      expect(inos).toEqual([String((await fsp.stat(join(C, name))).ino), String((await fsp.stat(join(C, name))).ino)]);
    }
  });

  it("two sqlite writers on two nodes insert into one database: every row is there and the database is whole", async () => {
    const db = "db.sqlite";
    const writer = join(c.dir, "sqlite-writer.py");
    await fsp.writeFile(
      writer,
      [
        "import sqlite3, sys",
        "c = sqlite3.connect(sys.argv[1], timeout=60)",
        "c.execute('create table if not exists t (who text, i int)')",
        "c.commit()",
        "for i in range(int(sys.argv[3])):",
        "    c.execute('insert into t values (?, ?)', (sys.argv[2], i))",
        "    c.commit()",
        "print('done', flush=True)",
      ].join("\n"),
    );
    const run = (dir: string, who: string): Promise<string> => python(writer, join(dir, db), who, "40");
    expect(await Promise.all([run(A, "n1"), run(B, "n2")])).toEqual(["done", "done"]);
    const check = await python(
      "-c",
      "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute('select who, count(*) from t group by who order by who').fetchall(), c.execute('pragma integrity_check').fetchone()[0])",
      join(C, db),
    );
    expect(check).toBe("[('n1', 40), ('n2', 40)] ok");
  });
});
