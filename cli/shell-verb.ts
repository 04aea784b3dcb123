import { join } from "node:path";
import { userInfo } from "node:os";
import { oneosHome } from "../cluster/index.js";
import { KernelError } from "../pseudokernel/index.js";
import { ClusterExecutor, LocalExecutor, NodeFs, runShell } from "../shell/index.js";
import { clusterUrl, connectKernel } from "./find-cluster.js";

export interface ShellVerbOptions {
  readonly command?: string;
  readonly nats?: string;
  readonly local?: boolean;
}

/**
 * `oneos shell [-c LINE]`: the cluster's shell, interactive on a terminal, else like `sh -c`.
 *
 * The shell lives on a home node (the one whose NATS server it talks to): its cd, globbing and
 * builtins' redirections see that node's view of the tree. With CloudFS, `$HOME` is `/home/USER` in
 * CloudFS (created on first use) and the shell starts there, so every node sees the same files.
 */
export async function shellVerb(options: ShellVerbOptions): Promise<number> {
  const user = userInfo().username;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const interactive = options.command === undefined && process.stdin.isTTY === true;
  const common = {
    user,
    interactive,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    historyFile: join(oneosHome(), "history"),
    ...(options.command !== undefined ? { command: options.command } : {}),
  };
  if (options.local === true) {
    const home = process.env["HOME"] ?? userInfo().homedir;
    const executor = new LocalExecutor({ nodes: ["n1", "n2", "n3"] });
    return await runShell({ ...common, env, cwd: process.cwd(), home, executor });
  }
  const url = await clusterUrl(options.nats);
  const kernel = await connectKernel(url, `oneos-shell-${user}`);
  try {
    const nodes = (await kernel.nodes()).filter((n) => n.effective === "ready");
    const homeNode = nodes.find((n) => n.nats === url) ?? nodes[0];
    if (homeNode === undefined) throw new KernelError("ENONODE", `no ready node in the cluster at ${url}`);
    const fs = new NodeFs(kernel, () => homeNode.name);
    let home = process.env["HOME"] ?? userInfo().homedir;
    let cwd = process.cwd();
    if (homeNode.mount !== null) {
      home = user === "root" ? "/home/root" : `/home/${user}`;
      await fs.mkdirp(home);
      cwd = home;
      env["HOME"] = home;
    }
    env["PWD"] = cwd;
    const executor = await ClusterExecutor.create(kernel, { user, fs });
    try {
      return await runShell({
        ...common,
        env,
        cwd,
        home,
        executor,
        killPid: async (pid: number, signal: string) => {
          await kernel.signal(pid, signal, user);
        },
      });
    } finally {
      executor.close();
    }
  } finally {
    await kernel.close();
  }
}
