import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, waitForPort } from "../../cluster/index.js";

const exec = promisify(execFile);

/** A private sshd on 127.0.0.1 with throw-away keys: the reference every benchmark compares with. */
export interface LoopbackSshd {
  readonly port: number;
  /** `ssh` argv prefix that logs in without prompts (append the remote command). */
  readonly sshArgs: readonly string[];
  /** Options for sshfs / ssh -o (identity, port, no host-key checks). */
  readonly options: readonly string[];
  readonly user: string;
  close(): Promise<void>;
}

/** Starts sshd, or returns a reason it cannot (no openssh-server, not root…). */
export async function startLoopbackSshd(): Promise<LoopbackSshd | { readonly skipped: string }> {
  if (!existsSync("/usr/sbin/sshd")) return { skipped: "no sshd (Debian package openssh-server)" };
  const dir = await mkdtemp(join(tmpdir(), "oneos-sshd-"));
  let child: ChildProcess | undefined;
  try {
    await mkdir("/run/sshd", { recursive: true }).catch(() => undefined); // privilege separation dir
    await exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
    await exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "client_key")]);
    await exec("cp", [join(dir, "client_key.pub"), join(dir, "authorized_keys")]);
    const port = await freePort();
    await writeFile(
      join(dir, "sshd_config"),
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${join(dir, "host_key")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        "PasswordAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        // With PAM off, sshd refuses an account whose password is locked ("!" in /etc/shadow, as root
        // is on a fresh Debian image), even for a key; with PAM, a key is enough.
        "UsePAM yes",
        "Subsystem sftp internal-sftp",
        "",
      ].join("\n"),
    );
    child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: "ignore" });
    await waitForPort(port, 10_000);
    const user = userInfo().username;
    const options = [
      "-o", `IdentityFile=${join(dir, "client_key")}`,
      "-o", "StrictHostKeyChecking=no",
      "-o", "UserKnownHostsFile=/dev/null",
      "-o", "BatchMode=yes",
      "-o", "LogLevel=ERROR",
    ];
    const sshArgs = [...options, "-p", String(port), `${user}@127.0.0.1`];
    await exec("ssh", [...sshArgs, "true"], { timeout: 10_000 });
    const started = child;
    return {
      port,
      sshArgs,
      options,
      user,
      async close() {
        started.kill("SIGTERM");
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    child?.kill("SIGTERM");
    await rm(dir, { recursive: true, force: true });
    // ssh's own words (its stderr) say why, where there are any; exec's message starts "Command failed".
    const said = String((error as { stderr?: unknown }).stderr ?? "").trim().split("\n").pop();
    return { skipped: `sshd did not start: ${said || (error as Error).message.split("\n")[0]}` };
  }
}
