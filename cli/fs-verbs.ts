import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { userInfo } from "node:os";
import { LocalCluster, oneosHome } from "../cluster/index.js";
import { KernelError } from "../pseudokernel/index.js";
import { cloudFsUsage, fsBench } from "../vfs-fuse/index.js";
import { connectKernel } from "./find-cluster.js";
import { formatTable } from "./table.js";

/**
 * `oneos fs bench [DIR]`: big-file write/read in 1 MiB I/O and 1,000 small 128 KiB files
 * (write/read/stat). DIR defaults to a scratch directory in CloudFS through the first local node's mount.
 */
export async function fsBenchVerb(dir: string | undefined, options: { size?: string; files?: string }): Promise<number> {
  let target = dir;
  let scratch = false;
  if (target === undefined) {
    const node = (await new LocalCluster(oneosHome()).status()).find((n) => n.state === "ready" && n.mount !== null);
    if (node?.mount === undefined || node.mount === null) {
      throw new KernelError("ENONODE", "no local node with CloudFS mounted: give a directory (oneos fs bench DIR)");
    }
    target = join(node.mount, "home", userInfo().username === "root" ? "root" : userInfo().username, `.fs-bench-${process.pid}`);
    scratch = true;
  }
  await mkdir(target, { recursive: true });
  const mib = options.size === undefined ? 1024 : Number(options.size);
  const files = options.files === undefined ? 1000 : Number(options.files);
  if (!Number.isFinite(mib) || mib <= 0 || !Number.isInteger(files) || files <= 0) {
    throw new KernelError("EINVAL", "--size takes MiB > 0, --files a whole number > 0");
  }
  try {
    process.stderr.write(`oneos: benchmarking ${target} (${mib} MiB file, ${files} × 128 KiB files)\n`);
    const r = await fsBench(target, { sizeBytes: mib * 1024 * 1024, smallFiles: files });
    const fmt = (v: number | undefined, unit: string): string => (v === undefined ? "-" : `${v.toFixed(0)} ${unit}`);
    process.stdout.write(
      formatTable(
        ["workload", "figure"],
        [
          ["sequential write (1 MiB I/O)", fmt(r.seqWriteMBps, "MB/s")],
          ["sequential read (1 MiB I/O)", fmt(r.seqReadMBps, "MB/s")],
          ["128 KiB file creates+writes", fmt(r.createsPerSec, "files/s")],
          ["128 KiB file reads", fmt(r.smallReadsPerSec, "files/s")],
          ["stats", fmt(r.statsPerSec, "stats/s")],
        ],
      ),
    );
    return 0;
  } finally {
    if (scratch) await rm(target, { recursive: true, force: true });
  }
}

/** `oneos df`: what CloudFS stores in the cluster. */
export async function dfVerb(options: { json?: boolean; nats?: string }): Promise<number> {
  const kernel = await connectKernel(options.nats, "oneos-df");
  try {
    const u = await cloudFsUsage(kernel.nc);
    if (options.json === true) {
      process.stdout.write(JSON.stringify(u, null, 2) + "\n");
      return 0;
    }
    const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
    process.stdout.write(
      formatTable(
        ["Filesystem", "Data", "Blocks", "Metadata", "Records", "Replicas", "Stored (all replicas)"],
        [["cloudfs", mib(u.blockBytes), String(u.blocks), mib(u.metaBytes), String(u.metaRecords), String(u.replicas), mib((u.blockBytes + u.metaBytes) * u.replicas)]],
      ),
    );
    if (u.nodes.length > 0) {
      process.stdout.write("\n" + formatTable(
        ["Node", "Mode", "Dirty", "Dirty cap", "Oldest dirty", "Unstored changes", "Blocks to purge", "Leases"],
        u.nodes.map((n) => [
          n.node,
          n.strict ? "strict" : "write-back",
          mib(n.dirtyBytes),
          mib(n.dirtyCapBytes),
          `${(n.oldestDirtyAgeMs / 1000).toFixed(1)} s`,
          String(n.pendingOps),
          String(n.purgesPending ?? 0),
          String(n.leases),
        ]),
      ));
    }
    return 0;
  } finally {
    await kernel.close();
  }
}
