import { join } from "node:path";
import { userInfo } from "node:os";
import { oneosHome } from "../cluster/index.js";
import { KernelError } from "../pseudokernel/index.js";
import { ClusterExecutor, LocalExecutor, runShell } from "../shell/index.js";
import { connectKernel } from "./find-cluster.js";

export interface ShellVerbOptions {
  readonly command?: string;
  readonly nats?: string;
  readonly local?: boolean;
}

/** `oneos shell [-c LINE]`: the cluster's shell, interactive on a terminal, else like `sh -c`. */
export async function shellVerb(options: ShellVerbOptions): Promise<number> {
  const user = userInfo().username;
  const home = process.env["HOME"] ?? userInfo().homedir;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const interactive = options.command === undefined && process.stdin.isTTY === true;
  const common = {
    env,
    cwd: process.cwd(),
    home,
    user,
    interactive,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    historyFile: join(oneosHome(), "history"),
    ...(options.command !== undefined ? { command: options.command } : {}),
  };
  if (options.local === true) {
    return await runShell({ ...common, executor: new LocalExecutor({ nodes: ["n1", "n2", "n3"] }) });
  }
  const kernel = await connectKernel(options.nats, `oneos-shell-${user}`);
  const executor = await ClusterExecutor.create(kernel, { user });
  try {
    return await runShell({
      ...common,
      executor,
      killPid: async (pid: number, signal: string) => {
        await kernel.signal(pid, signal, user);
      },
    });
  } catch (error) {
    if (error instanceof KernelError) throw error;
    throw error;
  } finally {
    executor.close();
    await kernel.close();
  }
}
