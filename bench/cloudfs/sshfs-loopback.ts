import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { startLoopbackSshd } from "../lib/loopback-sshd.js";

const run = promisify(execFile);

/** sshfs over loopback: the benchmarks' private sshd, and an sshfs mount of a directory under `dir`. */
export interface SshfsLoopback {
  readonly mountpoint: string;
  close(): Promise<void>;
}

export async function startSshfsLoopback(dir: string): Promise<SshfsLoopback> {
  await mkdir(join(dir, "remote"), { recursive: true });
  const mountpoint = join(dir, "mnt");
  await mkdir(mountpoint, { recursive: true });
  const sshd = await startLoopbackSshd();
  if ("skipped" in sshd) throw new Error(sshd.skipped);
  try {
    await run("sshfs", ["-p", String(sshd.port), ...sshd.options, `${sshd.user}@127.0.0.1:${join(dir, "remote")}`, mountpoint]);
  } catch (error) {
    await sshd.close();
    throw error;
  }
  return {
    mountpoint,
    async close() {
      await run("fusermount", ["-u", mountpoint]).catch(() => run("fusermount", ["-uz", mountpoint]));
      await sshd.close();
    },
  };
}
