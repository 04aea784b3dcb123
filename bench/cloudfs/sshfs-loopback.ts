import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile, readFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../../cluster/free-port.js";
import { waitForPort } from "../../cluster/nats-server.js";

const run = promisify(execFile);

/** sshfs over loopback: a private sshd (temporary host key, key auth for root) and an sshfs mount. */
export interface SshfsLoopback {
  readonly mountpoint: string;
  close(): Promise<void>;
}

export async function startSshfsLoopback(dir: string): Promise<SshfsLoopback> {
  await mkdir(join(dir, "remote"), { recursive: true });
  const mountpoint = join(dir, "mnt");
  await mkdir(mountpoint, { recursive: true });
  await mkdir("/run/sshd", { recursive: true }); // sshd's privilege-separation directory
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "hostkey")]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "userkey")]);
  await writeFile(join(dir, "authorized_keys"), await readFile(join(dir, "userkey.pub")));
  await chmod(join(dir, "authorized_keys"), 0o600);
  const port = await freePort();
  const config = [
    `Port ${port}`,
    `ListenAddress 127.0.0.1`,
    `HostKey ${join(dir, "hostkey")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    `PermitRootLogin prohibit-password`,
    `PasswordAuthentication no`,
    `StrictModes no`,
    `UsePAM no`,
    `Subsystem sftp internal-sftp`,
  ].join("\n");
  await writeFile(join(dir, "sshd_config"), config + "\n");
  const sshd: ChildProcess = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: "ignore" });
  try {
    await waitForPort(port, 10_000);
    await run("sshfs", [
      "-p",
      String(port),
      "-o",
      `IdentityFile=${join(dir, "userkey")},StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,LogLevel=ERROR`,
      `root@127.0.0.1:${join(dir, "remote")}`,
      mountpoint,
    ]);
  } catch (err) {
    sshd.kill();
    throw err;
  }
  return {
    mountpoint,
    async close() {
      await run("fusermount", ["-u", mountpoint]).catch(() => run("fusermount", ["-uz", mountpoint]));
      const exited = new Promise((r) => sshd.once("exit", r));
      sshd.kill();
      await exited;
    },
  };
}
