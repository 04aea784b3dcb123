#!/usr/bin/env node
/**
 * CloudFS against its alternatives, in one run, one table:
 *   CloudFS write-back | CloudFS strict | local dir | FUSE ceiling | sshfs
 * Both CloudFS columns run on the same 3-server R3 NATS cluster, each with its own two fs-daemon
 * child mounts (node A writes, node B reads); the strict mounts get `--strict`, every mount its own
 * `--journal DIR`. The FUSE ceiling is an in-memory fuse-native file system in a child process; sshfs
 * mounts a directory over a private sshd on loopback.
 *
 *   node dist/bench/run.js cloudfs        (after a build; or `npm run bench -- cloudfs`, which builds first)
 *   node dist/bench/cloudfs/cloudfs-bench.js [--size MiB] [--files N] [--runs N]
 * Environment:
 *   ONEOS_BENCH_QUICK=1          64 MiB, 200 files, a ~1,000-entry tree (default: 1 GiB, 1,000, 5,000)
 *   ONEOS_BENCH_SIZE_MIB=N       size of the sequential files and of the raw KV put
 *   ONEOS_BENCH_FILES=N          number of 128 KiB files
 *   ONEOS_BENCH_TREE_ENTRIES=N   the tree is node_modules' first packages by name with ≥ N entries; "all": all of it
 *   ONEOS_BENCH_OLD_DAEMON=1     start fs-daemon without --strict and --journal (a daemon that does not know
 *                                them yet): both CloudFS columns are then the same mode; for testing the bench only
 *
 * External programs (tar, git, find, du, rm) run as child processes with async spawn; the mounts are
 * served by child daemons, never by this process.
 */
import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, open, readdir, readFile, realpath, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { planNatsCluster } from "../../cluster/nats-cluster-plan.js";
import { startNatsServer, waitForPort, type NatsServerSpec } from "../../cluster/nats-server.js";
import { median, spawnTimed } from "../lib/measure.js";
import { startChildMount, type ChildMount } from "./child-mount.js";
import { rawKvPutMBps, waitUntilStored, type StoredWait } from "./nats-reference.js";
import { startSshfsLoopback } from "./sshfs-loopback.js";

export const COLUMNS = ["CloudFS write-back", "CloudFS strict", "local dir", "FUSE ceiling", "sshfs"] as const;
export type Column = (typeof COLUMNS)[number];

const ROW_KEYS = [
  "seqWrite",
  "fsyncWrite",
  "rawPut",
  "fsyncRatio",
  "windowSeq",
  "seqReadCold",
  "seqReadWarm",
  "creates",
  "windowCreates",
  "smallRead",
  "smallReread",
  "stat",
  "tarExtract",
  "windowTar",
  "find",
  "du",
  "rmrf",
  "cloneSeconds",
  "cloneRate",
] as const;
export type RowKey = (typeof ROW_KEYS)[number];

/** A figure, or why there is none: `text` is what the table shows ("fail", "—", "> 600 s"). */
export type Cell = number | { readonly text: string; readonly why?: string };

export interface BenchRow {
  readonly key: RowKey;
  readonly name: string;
  readonly unit: string;
  readonly values: Partial<Record<Column, Cell>>;
  readonly goal: string;
}

export interface CloudFsBenchReport {
  readonly rows: BenchRow[];
  /** One line per goal of the issue: the figures and met / not met. */
  readonly goals: string[];
  readonly notes: string[];
}

export interface CloudFsBenchOptions {
  /** Bytes of the sequential files, the fsync'd file and the raw KV put (default 1 GiB). */
  readonly sizeBytes?: number;
  /** Number of 128 KiB files (default 1,000). */
  readonly smallFiles?: number;
  /** Runs of the repeated rows (warm reads, stats): the median is reported. Default 3. */
  readonly runs?: number;
  /** The tree: the first packages of node_modules with at least this many entries (default 5,000), or all of it. */
  readonly treeEntries?: number | "all";
  /** Start fs-daemon without `--strict` / `--journal` (for a daemon that does not know them yet). */
  readonly oldDaemon?: boolean;
}

/** The options the environment asks for (see the file's comment); `--size`/`--files` override them. */
export function cloudFsBenchOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): CloudFsBenchOptions {
  const quick = env.ONEOS_BENCH_QUICK === "1";
  const num = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === "") return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${v}: not a positive number`);
    return n;
  };
  const mib = num("ONEOS_BENCH_SIZE_MIB") ?? (quick ? 64 : undefined);
  const files = num("ONEOS_BENCH_FILES") ?? (quick ? 200 : undefined);
  const tree = env.ONEOS_BENCH_TREE_ENTRIES === "all" ? "all" : (num("ONEOS_BENCH_TREE_ENTRIES") ?? (quick ? 1000 : undefined));
  return {
    ...(mib !== undefined ? { sizeBytes: mib * 1024 ** 2 } : {}),
    ...(files !== undefined ? { smallFiles: files } : {}),
    ...(tree !== undefined ? { treeEntries: tree } : {}),
    ...(env.ONEOS_BENCH_OLD_DAEMON === "1" ? { oldDaemon: true } : {}),
  };
}

/** I/O size of the sequential rows. */
const IO_BYTES = 1024 * 1024;
const SMALL_FILE_BYTES = 128 * 1024;
/** Small-file operations kept in flight, like a parallel `tar x` or `make -j` would. */
const SMALL_FILE_CONCURRENCY = 8;
/** Puts in flight for the raw KV reference (CloudFS itself uploads up to 8 blocks at once). */
const RAW_PUT_IN_FLIGHT = 16;
/** The real tree has at least this many entries (the issue's figure): the default subset of node_modules. */
const MIN_TREE_ENTRIES = 5000;
/** Written and removed untimed at the start of every column. */
const WARM_UP_BYTES = 16 * 1024 * 1024;
/** Longest wait for a write-back daemon to store what it holds. */
const STORE_TIMEOUT_MS = 600_000;

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const perSec = (n: number, ms: number): number => n / (ms / 1000);
const firstLine = (err: unknown): string => ((err as Error).message ?? String(err)).split("\n")[0]!;

interface Opts {
  readonly sizeBytes: number;
  readonly smallFiles: number;
  readonly runs: number;
  readonly treeEntries: number | undefined;
  readonly oldDaemon: boolean;
}

/** The tar file of a real tree, made before any clock starts. */
interface TreeSource {
  readonly tarFile: string;
  /** `tar -tf FILE | wc -l`. */
  readonly entries: number;
  /** Lines `find` prints over the extracted tree: its root, and node_modules itself when only packages of it were packed. */
  readonly findLines: number;
  readonly bytes: number;
  readonly label: string;
}

/** The project's own git checkout, cloned by the `git clone` row. */
interface RepoSource {
  readonly root: string;
  readonly commits: number;
}

/** One column: where its workloads write, and the same place seen from another node. */
interface Target {
  readonly column: Column;
  readonly writeDir: string;
  readonly readDir: string;
  /** The fsync'd write applies (CloudFS and the local dir). */
  readonly fsync: boolean;
  /** CloudFS: the bench's NATS connection and the write-back daemons to ask. */
  readonly cloud?: {
    readonly nc: NatsConnection;
    readonly writer: string;
    readonly reader: string;
    readonly rawPutBucket: string;
  };
}

interface Context {
  readonly opts: Opts;
  readonly tree: TreeSource | Error;
  readonly repo: RepoSource | Error;
  readonly notes: string[];
}

type Cells = Partial<Record<RowKey, Cell>>;

export async function runCloudFsBench(options: CloudFsBenchOptions = {}): Promise<CloudFsBenchReport> {
  const opts: Opts = {
    sizeBytes: options.sizeBytes ?? 1024 ** 3,
    smallFiles: options.smallFiles ?? 1000,
    runs: Math.max(1, options.runs ?? 3),
    treeEntries: options.treeEntries === "all" ? undefined : (options.treeEntries ?? MIN_TREE_ENTRIES),
    oldDaemon: options.oldDaemon ?? false,
  };
  const dir = await mkdtemp(join(tmpdir(), "oneos-fsbench-"));
  const notes: string[] = [];
  const results: Partial<Record<Column, Cells>> = {};
  const cleanups: (() => Promise<void>)[] = [];
  /** Marks every row of the column not measured yet as failed (the rows it did measure stay). */
  const failColumn = (column: Column, err: unknown): void => {
    const said = firstLine(err);
    // An fs-daemon from before these flags refuses them (parseArgs is strict).
    const why = /Unknown option '--(strict|journal|data-host)'/.test(said) ? `${said} (an fs-daemon without --strict/--journal: ONEOS_BENCH_OLD_DAEMON=1 runs it without them)` : said;
    const cells = (results[column] ??= {});
    for (const k of ROW_KEYS) cells[k] ??= { text: "fail", why };
    notes.push(`${column}: stopped: ${why}`);
  };
  const log = (line: string): void => void process.stderr.write(`cloudfs bench: ${line}\n`);
  try {
    // --- what the tree rows need, outside every clock ---
    const root = await projectRoot();
    const repo = root instanceof Error ? root : await repoSource(root);
    const tree = root instanceof Error ? root : await prepareTree(root, join(dir, "tree.tar"), opts.treeEntries).catch((e: unknown) => e as Error);
    const ctx: Context = { opts, tree, repo, notes };
    if (!(tree instanceof Error)) notes.push(`tree rows: ${tree.label}.`);
    else notes.push(`tree rows skipped: ${tree.message}`);
    if (!(repo instanceof Error)) notes.push(`git clone: git clone --no-hardlinks ${repo.root} (${repo.commits} commits); entries/s counts every entry of the clone, .git included.`);

    const took: string[] = [];
    /** One column: progress on stderr, its time in the notes, and a failure confined to it. */
    const section = async (column: Column, fn: (cells: Cells) => Promise<void>): Promise<void> => {
      const began = performance.now();
      log(`${column}…`);
      try {
        await fn((results[column] = {}));
      } catch (err) {
        failColumn(column, err);
      }
      const seconds = Math.round((performance.now() - began) / 1000);
      log(`${column}: ${seconds} s`);
      took.push(`${column} ${seconds} s`);
    };

    // --- CloudFS: one 3-server R3 cluster; write-back mounts, then strict mounts ---
    let specs: NatsServerSpec[] | undefined;
    let nc: NatsConnection | undefined;
    try {
      specs = await planNatsCluster(join(dir, "nats"), ["s1", "s2", "s3"]);
      const servers: ChildProcess[] = [];
      cleanups.push(async () => {
        for (const s of servers) s.kill("SIGKILL");
      });
      for (const spec of specs) servers.push(await startNatsServer(spec));
      await Promise.all(specs.map((s) => waitForPort(s.clientPort)));
      const connected = await connect({ servers: specs.map((s) => `nats://127.0.0.1:${s.clientPort}`), noAsyncTraces: true, name: "cloudfs bench" });
      nc = connected;
      cleanups.push(() => connected.close());
    } catch (err) {
      failColumn("CloudFS write-back", err);
      failColumn("CloudFS strict", err);
    }
    if (specs !== undefined && nc !== undefined) {
      const cluster = specs;
      const bench = nc;
      for (const [column, mode] of [
        ["CloudFS write-back", "write-back"],
        ["CloudFS strict", "strict"],
      ] as const) {
        await section(column, async (cells) => {
          const tag = mode === "strict" ? "strict" : "wb";
          const mounts: ChildMount[] = [];
          try {
            const mountpoints: string[] = [];
            // Node A on server 1 writes, node B on server 2 reads: B never saw the data (cold).
            for (const [i, side] of (["a", "b"] as const).entries()) {
              const nodeId = `bench-${tag}-${side}`;
              const mountpoint = join(dir, `mnt-${nodeId}`);
              const args = [
                "--nats", `nats://127.0.0.1:${cluster[i]!.clientPort}`,
                "--mount", mountpoint,
                "--cache", join(dir, `cache-${nodeId}`),
                "--node-id", nodeId,
                "--replicas", "3",
              ];
              if (!opts.oldDaemon) {
                const journal = join(dir, `journal-${nodeId}`);
                await mkdir(journal, { recursive: true });
                args.push("--journal", journal);
                if (mode === "strict") args.push("--strict");
                // As the runtime starts it: peers read this node's cached blocks over direct links.
                args.push("--data-host", "127.0.0.1");
              }
              mounts.push(await startChildMount("../../vfs-fuse/fs-daemon", args));
              mountpoints.push(mountpoint);
            }
            const sub = join("home", `bench-${tag}`);
            await mkdir(join(mountpoints[0]!, sub), { recursive: true });
            const target: Target = {
              column,
              writeDir: join(mountpoints[0]!, sub),
              readDir: join(mountpoints[1]!, sub),
              fsync: true,
              cloud: { nc: bench, writer: `bench-${tag}-a`, reader: `bench-${tag}-b`, rawPutBucket: `bench-raw-put-${tag}` },
            };
            await measureTarget(target, ctx, cells);
          } finally {
            for (const m of mounts.reverse()) await m.stop().catch(() => {});
          }
        });
      }
      notes.push(
        "CloudFS: 3 nats-servers, buckets R3; node A (server 1) writes, node B (server 2) reads (cold: B never read the data; warm: B again). " +
          (opts.oldDaemon
            ? "ONEOS_BENCH_OLD_DAEMON=1: the daemons ran WITHOUT --strict and --journal, so both CloudFS columns are the same mode."
            : "Strict mounts: fs-daemon --strict; every mount has its own --journal DIR."),
      );
      notes.push(
        `raw JetStream KV put: ${RAW_PUT_IN_FLIGHT} puts of 1 MiB values in flight into a fresh R3 bucket on the same cluster, ` +
          "measured right before each CloudFS column's fsync'd write (each after a `sync`, so neither starts behind the disk's backlog).",
      );
    }
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});

    // --- local directory ---
    await section("local dir", async (cells) => {
      const local = join(dir, "local");
      await mkdir(local, { recursive: true });
      await measureTarget({ column: "local dir", writeDir: local, readDir: local, fsync: true }, ctx, cells);
    });

    // --- in-memory fuse-native: the ceiling ---
    await section("FUSE ceiling", async (cells) => {
      const memfs = join(dir, "memfs");
      const mem = await startChildMount("./mem-fuse-daemon", ["--mount", memfs]);
      try {
        await measureTarget({ column: "FUSE ceiling", writeDir: memfs, readDir: memfs, fsync: false }, ctx, cells);
      } finally {
        await mem.stop();
      }
    });

    // --- sshfs over loopback ---
    await section("sshfs", async (cells) => {
      const ssh = await startSshfsLoopback(join(dir, "ssh"));
      try {
        await measureTarget({ column: "sshfs", writeDir: ssh.mountpoint, readDir: ssh.mountpoint, fsync: false }, ctx, cells);
      } finally {
        await ssh.close();
      }
    });
    notes.push(`time per column: ${took.join(", ")}.`);
    notes.push("local dir, FUSE ceiling, sshfs: one mount, so reads follow the writes on it (the local dir's come from the page cache).");
    notes.push(`medians of ${opts.runs} runs: warm seq read, warm small reads, stats; every other row is one run.`);
  } finally {
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
  const rows = rowDefinitions(opts).map((d) => ({
    ...d,
    values: Object.fromEntries(COLUMNS.map((c) => [c, results[c]?.[d.key]]).filter(([, v]) => v !== undefined)) as Partial<Record<Column, Cell>>,
  }));
  return { rows, goals: evaluateGoals(results), notes };
}

function rowDefinitions(opts: Opts): { key: RowKey; name: string; unit: string; goal: string }[] {
  const size = `${Math.round(opts.sizeBytes / 1024 ** 2)} MiB`;
  const n = opts.smallFiles;
  return [
    { key: "seqWrite", name: `seq write ${size}, 1 MiB I/O`, unit: "MB/s", goal: "wb ≥ 80 % ceiling, > sshfs" },
    { key: "fsyncWrite", name: `fsync'd seq write ${size}`, unit: "MB/s", goal: "≥ 90 % of raw put" },
    { key: "rawPut", name: `raw JetStream KV R3 put ${size}, 1 MiB values`, unit: "MB/s", goal: "reference" },
    { key: "fsyncRatio", name: "fsync'd write ÷ raw R3 put", unit: "%", goal: "≥ 90 %" },
    { key: "windowSeq", name: "durability window after seq write", unit: "s", goal: "" },
    { key: "seqReadCold", name: `seq read ${size} cold (node B)`, unit: "MB/s", goal: "≥ 250" },
    { key: "seqReadWarm", name: `seq read ${size} warm (node B again)`, unit: "MB/s", goal: "≥ 70 % of ceiling" },
    { key: "creates", name: `${n} × 128 KiB create+write`, unit: "files/s", goal: "wb ≥ 80 % ceiling, > sshfs; strict > sshfs" },
    { key: "windowCreates", name: `durability window after the ${n} closes`, unit: "s", goal: "" },
    { key: "smallRead", name: `${n} × 128 KiB read (node B)`, unit: "files/s", goal: "" },
    { key: "smallReread", name: `${n} × 128 KiB read warm (node B again)`, unit: "files/s", goal: "" },
    { key: "stat", name: `${n} × stat (node B)`, unit: "stats/s", goal: "≥ 40,000" },
    { key: "tarExtract", name: "tar -xf real tree (node A)", unit: "entries/s", goal: "≥ 1,000" },
    { key: "windowTar", name: "durability window after tar -xf", unit: "s", goal: "" },
    { key: "find", name: "find over the tree (node B)", unit: "entries/s", goal: "" },
    { key: "du", name: "du -s over the tree (node B)", unit: "entries/s", goal: "" },
    { key: "rmrf", name: "rm -rf the tree (node A)", unit: "entries/s", goal: "" },
    { key: "cloneSeconds", name: "git clone --no-hardlinks this repo", unit: "s", goal: "" },
    { key: "cloneRate", name: "git clone --no-hardlinks this repo", unit: "entries/s", goal: "" },
  ];
}

/**
 * Every row through one column, into `cells` as it goes. A row that fails is marked so and the column
 * goes on with the next; what it cannot go on from (the work directory gone) rejects.
 */
async function measureTarget(t: Target, ctx: Context, cells: Cells): Promise<void> {
  const { opts } = ctx;
  const work = join(t.writeDir, `.cloudfs-bench-${process.pid}`);
  const readWork = join(t.readDir, `.cloudfs-bench-${process.pid}`);
  const step = async (key: RowKey, fn: () => Promise<Cell>): Promise<void> => {
    try {
      cells[key] = await fn();
    } catch (err) {
      cells[key] = { text: "fail", why: firstLine(err) };
      ctx.notes.push(`${t.column}: ${key} failed: ${firstLine(err)}`);
    }
  };
  const na = (why: string): Cell => ({ text: "—", why });
  /** Waits until node A has stored all it holds; a durability window cell (s), or "—" without a status. */
  const settle = async (): Promise<Cell> => {
    if (t.cloud === undefined) return na("not CloudFS");
    return windowCell(await waitUntilStored(t.cloud.nc, t.cloud.writer, { timeoutMs: STORE_TIMEOUT_MS }));
  };
  /** Flushes the machine's dirty pages (every replica's writes share one disk), outside the clocks. */
  const diskSync = async (): Promise<void> => void (await spawnTimed("sync", []).catch(() => undefined));
  /** Between rows: all stored and purged, and the machine's disk flushed, so no row pays for the one before. */
  const quietSettle = async (): Promise<void> => {
    if (t.cloud !== undefined) await waitUntilStored(t.cloud.nc, t.cloud.writer, { timeoutMs: STORE_TIMEOUT_MS, purged: true }).catch(() => undefined);
    await diskSync();
  };
  const repeat = async (fn: () => Promise<number>): Promise<number> => {
    const values: number[] = [];
    for (let i = 0; i < opts.runs; i++) values.push(await fn());
    return median(values);
  };
  await mkdir(work, { recursive: true });
  try {
    // Untimed: the first write of a fresh mount (and cluster) is not what any row measures.
    await seqWrite(join(work, "warm-up"), Math.min(opts.sizeBytes, WARM_UP_BYTES), false);
    await rm(join(work, "warm-up"));
    await quietSettle();

    // --- sequential: write on A; read on B cold, then warm ---
    const big = join(work, "big");
    await step("seqWrite", () => seqWrite(big, opts.sizeBytes, false));
    await step("windowSeq", settle);
    await step("seqReadCold", () => seqRead(join(readWork, "big"), opts.sizeBytes));
    await step("seqReadWarm", () => repeat(() => seqRead(join(readWork, "big"), opts.sizeBytes)));
    await rm(big, { force: true });
    await quietSettle();

    // --- fsync'd sequential write, next to the raw JetStream put it cannot beat ---
    if (t.fsync) {
      if (t.cloud !== undefined) {
        const cloud = t.cloud;
        await diskSync();
        await step("rawPut", () => rawKvPutMBps(cloud.nc, { bucket: cloud.rawPutBucket, totalBytes: opts.sizeBytes, inFlight: RAW_PUT_IN_FLIGHT }));
      }
      await diskSync();
      await step("fsyncWrite", () => seqWrite(join(work, "big-fsync"), opts.sizeBytes, true));
      const w = cells.fsyncWrite;
      const r = cells.rawPut;
      if (typeof w === "number" && typeof r === "number") cells.fsyncRatio = (100 * w) / r;
      await rm(join(work, "big-fsync"), { force: true });
      await quietSettle();
    }

    // --- small files: create on A (8 in flight), read and stat on B ---
    const small = join(work, "small");
    const readSmall = join(readWork, "small");
    await mkdir(small);
    const names = Array.from({ length: opts.smallFiles }, (_, i) => `f${i}`);
    const data = Buffer.alloc(SMALL_FILE_BYTES, 0x42);
    await step("creates", () => pool(names, (f) => writeFile(join(small, f), data, { flag: "wx" })));
    if (t.cloud !== undefined) {
      // Right after the last close: how long until each write-back mount holds nothing unstored.
      const cloud = t.cloud;
      const [a, b] = await Promise.all([cloud.writer, cloud.reader].map((id) => waitUntilStored(cloud.nc, id, { timeoutMs: STORE_TIMEOUT_MS })));
      cells.windowCreates = windowCell(a!);
      ctx.notes.push(`${t.column}: durability window after the ${opts.smallFiles} closes: ${cloud.writer} ${describeWait(a!)}, ${cloud.reader} ${describeWait(b!)}.`);
    }
    const readOne = async (f: string): Promise<void> => {
      const got = await readFile(join(readSmall, f));
      if (got.length !== SMALL_FILE_BYTES) throw new Error(`${f}: read ${got.length} bytes of ${SMALL_FILE_BYTES}`);
    };
    await step("smallRead", () => pool(names, readOne));
    await step("smallReread", () => repeat(() => pool(names, readOne)));
    await step("stat", () => repeat(() => pool(names, (f) => stat(join(readSmall, f)))));
    await rm(small, { recursive: true, force: true });
    await quietSettle();

    // --- a real tree: tar -xf on A; find and du -s on B; rm -rf on A ---
    const tree = ctx.tree;
    if (tree instanceof Error) {
      for (const k of ["tarExtract", "windowTar", "find", "du", "rmrf"] as const) cells[k] = na(tree.message);
    } else {
      const target = join(work, "tree");
      const readTarget = join(readWork, "tree");
      await mkdir(target);
      await step("tarExtract", async () => perSec(tree.entries, (await spawnTimed("tar", ["-xf", tree.tarFile, "-C", target])).ms));
      if (typeof cells.tarExtract === "number") {
        await step("windowTar", settle);
        await step("find", async () => {
          const r = await spawnTimed("find", [readTarget]);
          if (r.lines !== tree.findLines) ctx.notes.push(`${t.column}: find on node B listed ${r.lines} entries, ${tree.findLines} expected.`);
          return perSec(tree.entries, r.ms);
        });
        await step("du", async () => perSec(tree.entries, (await spawnTimed("du", ["-s", readTarget])).ms));
        await step("rmrf", async () => perSec(tree.entries, (await spawnTimed("rm", ["-rf", target])).ms));
      } else {
        for (const k of ["windowTar", "find", "du", "rmrf"] as const) cells[k] = na("tar -xf failed");
      }
      await rm(target, { recursive: true, force: true });
      await quietSettle();
    }

    // --- git clone of this repository, with its history ---
    const repo = ctx.repo;
    if (repo instanceof Error) {
      cells.cloneSeconds = cells.cloneRate = na(repo.message);
    } else {
      const target = join(work, "clone");
      await step("cloneSeconds", async () => (await spawnTimed("git", ["clone", "-q", "--no-hardlinks", repo.root, target])).ms / 1000);
      const seconds = cells.cloneSeconds;
      if (typeof seconds === "number") {
        await step("cloneRate", async () => {
          // Outside the clock: what the clone made (the root itself not counted).
          const entries = (await spawnTimed("find", [target])).lines - 1;
          ctx.notes.push(`${t.column}: git clone made ${entries.toLocaleString("en-US")} entries in ${seconds.toFixed(2)} s.`);
          return entries / seconds;
        });
      } else {
        cells.cloneRate = na("git clone failed");
      }
      await rm(target, { recursive: true, force: true });
      await quietSettle();
    }
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}

function windowCell(w: StoredWait): Cell {
  if (w.kind === "stored") return w.ms / 1000;
  if (w.kind === "timeout") return { text: `> ${Math.round(w.ms / 1000)} s`, why: `still ${w.last.dirtyBytes} bytes dirty, ${w.last.pendingOps} ops pending` };
  return { text: "—", why: `no status: ${w.reason}` };
}

function describeWait(w: StoredWait): string {
  if (w.kind === "stored") return `${(w.ms / 1000).toFixed(2)} s`;
  if (w.kind === "timeout") return `not stored after ${Math.round(w.ms / 1000)} s (${w.last.dirtyBytes} bytes dirty, ${w.last.pendingOps} ops pending)`;
  return `— (status request failed: ${w.reason})`;
}

async function seqWrite(path: string, size: number, fsync: boolean): Promise<number> {
  const chunk = Buffer.alloc(IO_BYTES, 0x5a);
  const started = performance.now();
  const fh = await open(path, "w");
  try {
    for (let off = 0; off < size; off += IO_BYTES) await fh.write(chunk, 0, Math.min(IO_BYTES, size - off), off);
    if (fsync) await fh.sync();
  } finally {
    await fh.close();
  }
  return mbps(size, performance.now() - started);
}

async function seqRead(path: string, size: number): Promise<number> {
  const buf = Buffer.alloc(IO_BYTES);
  const started = performance.now();
  const fh = await open(path, "r");
  let total = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, IO_BYTES, total);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
  } finally {
    await fh.close();
  }
  if (total !== size) throw new Error(`read ${total} bytes of ${size}`);
  return mbps(total, performance.now() - started);
}

/** Runs `fn` over the names, SMALL_FILE_CONCURRENCY at a time; resolves with operations per second. */
async function pool(names: readonly string[], fn: (name: string) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: SMALL_FILE_CONCURRENCY }, async () => {
      while (next < names.length) await fn(names[next++]!);
    }),
  );
  return perSec(names.length, performance.now() - started);
}

/** The checkout this bench file is in (`git rev-parse --show-toplevel` from its directory). */
async function projectRoot(): Promise<string | Error> {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    return (await spawnTimed("git", ["rev-parse", "--show-toplevel"], { cwd: here })).head.trim();
  } catch (err) {
    return new Error(`not in a git checkout: ${firstLine(err)}`);
  }
}

async function repoSource(root: string): Promise<RepoSource | Error> {
  try {
    const commits = Number((await spawnTimed("git", ["rev-list", "--count", "HEAD"], { cwd: root })).head.trim());
    return { root, commits };
  } catch (err) {
    return new Error(`no history to clone: ${firstLine(err)}`);
  }
}

/**
 * Packs the project's node_modules (all of it, or the first packages by name that together have at
 * least `minEntries` entries) into `tarFile`, and counts its entries with `tar -tf`.
 */
async function prepareTree(root: string, tarFile: string, minEntries: number | undefined): Promise<TreeSource> {
  const modules = await realpath(join(root, "node_modules"));
  let members = [basename(modules)];
  if (minEntries !== undefined) {
    members = [];
    let entries = 0;
    for (const name of (await readdir(modules)).sort()) {
      if (name.startsWith(".")) continue;
      const path = join(modules, name);
      const isDir = (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
      entries += 1 + (isDir ? (await readdir(path, { recursive: true })).length : 0);
      members.push(join(basename(modules), name));
      if (entries >= minEntries) break;
    }
  }
  await spawnTimed("tar", ["-cf", tarFile, "-C", dirname(modules), ...members]);
  const entries = (await spawnTimed("tar", ["-tf", tarFile])).lines;
  const bytes = (await stat(tarFile)).size;
  const what = minEntries === undefined ? "the project's node_modules" : `${members.length} packages of the project's node_modules`;
  const short = entries < MIN_TREE_ENTRIES ? ` — fewer than the ${MIN_TREE_ENTRIES.toLocaleString("en-US")} the issue asks for` : "";
  return {
    tarFile,
    entries,
    findLines: entries + 1 + (minEntries === undefined ? 0 : 1),
    bytes,
    label: `tar -xf of ${what}, ${entries.toLocaleString("en-US")} entries (tar -tf | wc -l), ${(bytes / 1e6).toFixed(0)} MB, packed before the clocks start${short}; every tree row's rate is those entries over its time`,
  };
}

/**
 * The issue's goals, one line per goal and CloudFS column: a verdict ("met", "NOT met", or "not
 * measured" when a figure it needs is missing), then the figures it was judged on.
 */
function evaluateGoals(results: Partial<Record<Column, Cells>>): string[] {
  const num = (c: Column, k: RowKey): number | undefined => {
    const v = results[c]?.[k];
    return typeof v === "number" ? v : undefined;
  };
  const f = (v: number | undefined, unit = ""): string =>
    v === undefined ? "—" : `${v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1)}${unit === "" ? "" : ` ${unit}`}`;
  const pct = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? "" : ` = ${Math.round((100 * a) / b)} %`);
  const lines: string[] = [];
  const goal = (ok: boolean | undefined, what: string, figures: string): void => {
    const verdict = ok === undefined ? "not measured" : ok ? "met" : "NOT met";
    lines.push(`${`[${verdict}]`.padEnd(14)} ${what}: ${figures}`);
  };
  const WB = "CloudFS write-back";
  const CLOUD = [
    ["CloudFS write-back", "write-back"],
    ["CloudFS strict", "strict"],
  ] as const;
  const ceiling = (k: RowKey): number | undefined => num("FUSE ceiling", k);
  const sshfs = (k: RowKey): number | undefined => num("sshfs", k);

  for (const [key, what, unit] of [
    ["seqWrite", "write-back seq write ≥ 80 % of the FUSE ceiling and ahead of sshfs", "MB/s"],
    ["creates", "write-back creates ≥ 80 % of the FUSE ceiling and ahead of sshfs", "files/s"],
  ] as const) {
    const v = num(WB, key);
    const c = ceiling(key);
    const s = sshfs(key);
    const ok = v === undefined || c === undefined || s === undefined ? undefined : v >= 0.8 * c && v > s;
    goal(ok, what, `${f(v, unit)}${pct(v, c)} of the ceiling's ${f(c)}; sshfs ${f(s)}`);
  }
  {
    const v = num(WB, "tarExtract");
    goal(v === undefined ? undefined : v >= 1000, "write-back real-tree extract ≥ 1,000 entries/s", f(v, "entries/s"));
  }
  for (const [col, name] of CLOUD) {
    const v = num(col, "seqReadCold");
    goal(v === undefined ? undefined : v >= 250, `${name} cold sequential read ≥ 250 MB/s`, f(v, "MB/s"));
  }
  for (const [col, name] of CLOUD) {
    const v = num(col, "seqReadWarm");
    const c = ceiling("seqReadWarm");
    goal(v === undefined || c === undefined ? undefined : v >= 0.7 * c, `${name} warm read ≥ 70 % of the ceiling`, `${f(v, "MB/s")}${pct(v, c)} of the ceiling's ${f(c)}`);
  }
  for (const [col, name] of CLOUD) {
    const v = num(col, "stat");
    goal(v === undefined ? undefined : v >= 40_000, `${name} stats ≥ 40,000/s`, f(v, "stats/s"));
  }
  {
    const v = num("CloudFS strict", "creates");
    const s = sshfs("creates");
    goal(v === undefined || s === undefined ? undefined : v > s, "strict ahead of sshfs on creates", `${f(v, "files/s")}; sshfs ${f(s)}`);
  }
  for (const [col, name] of CLOUD) {
    const w = num(col, "fsyncWrite");
    const r = num(col, "rawPut");
    goal(w === undefined || r === undefined ? undefined : w >= 0.9 * r, `${name} fsync'd write ≥ 90 % of the raw R3 put`, `${f(w, "MB/s")}${pct(w, r)} of the raw put's ${f(r)}`);
  }
  return lines;
}

export function formatCloudFsBench(report: CloudFsBenchReport): string {
  const fmt = (v: Cell | undefined, unit: string): string => {
    if (v === undefined) return "—";
    if (typeof v !== "number") return v.text;
    if (unit === "%") return `${Math.round(v)} %`;
    if (unit === "s") return v.toFixed(2);
    return v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1);
  };
  const header = ["", "unit", ...COLUMNS, "goal"];
  const lines = report.rows.map((r) => [r.name, r.unit, ...COLUMNS.map((c) => fmt(r.values[c], r.unit)), r.goal]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const render = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [
    "CloudFS",
    render(header),
    rule,
    ...lines.map(render),
    "",
    "goals:",
    ...report.goals.map((g) => `  ${g}`),
    "",
    ...report.notes.map((n) => `note: ${n}`),
  ].join("\n");
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { size: { type: "string" }, files: { type: "string" }, runs: { type: "string" } } });
  const report = await runCloudFsBench({
    ...cloudFsBenchOptionsFromEnv(),
    ...(values.size !== undefined ? { sizeBytes: Number(values.size) * 1024 ** 2 } : {}),
    ...(values.files !== undefined ? { smallFiles: Number(values.files) } : {}),
    ...(values.runs !== undefined ? { runs: Number(values.runs) } : {}),
  });
  console.log(formatCloudFsBench(report));
  process.exit(0);
}
