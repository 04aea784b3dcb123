import { join } from "node:path";
import { userInfo } from "node:os";
import type { Readable, Writable } from "node:stream";
import { oneosHome } from "../cluster/index.js";
import {
  decode,
  guarded,
  KernelError,
  registeredSignalSubject,
  type AuthReply,
  type KernelClient,
  type Session,
} from "../pseudokernel/index.js";
import { ClusterExecutor, LocalExecutor, NodeFs, runShell, type AccountInfo, type Accounts } from "../shell/index.js";
import { clusterUrl, connectKernel } from "./find-cluster.js";
import { keepSessionFresh, startShellSession } from "./login.js";
import { oneosBuiltin } from "./shell-oneos.js";

export interface ShellVerbOptions {
  readonly command?: string;
  readonly nats?: string;
  readonly local?: boolean;
  /** Log in as this cluster user (asks for the password); default root, on the cluster owner's machine. */
  readonly user?: string;
}

/**
 * `oneos shell [-c LINE]`: the cluster's shell, interactive on a terminal, else like `sh -c`.
 *
 * The shell lives on a home node (the one whose NATS server it talks to): its cd, globbing and
 * builtins' redirections see that node's view of the tree. With CloudFS, `$HOME` is `/home/USER` in
 * CloudFS (created on first use) and the shell starts there, so every node sees the same files.
 */
export async function shellVerb(options: ShellVerbOptions): Promise<number> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const io: ShellIo = {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env,
    cwd: process.cwd(),
    end: (status) => process.exit(status),
    hangUp: () => process.kill(process.pid, "SIGHUP"),
  };
  const interactive = options.command === undefined && process.stdin.isTTY === true;
  if (options.local === true) {
    const home = process.env["HOME"] ?? userInfo().homedir;
    const executor = new LocalExecutor({ nodes: ["n1", "n2", "n3"] });
    return await runShell({ ...shellCommon(io, userInfo().username, interactive, options.command), env, cwd: io.cwd, home, executor });
  }
  const url = await clusterUrl(options.nats);
  const { kernel, session } = await startShellSession(connectKernel(url, `oneos-shell-${options.user ?? "root"}`, "shell"), {
    user: options.user,
    nats: url,
  });
  let stopRefreshing = (): void => undefined;
  try {
    stopRefreshing = keepSessionFresh(kernel, (error) => {
      process.stderr.write(`oneos: ${error.message}\n`);
      io.hangUp();
    });
    return await clusterShell(kernel, session, url, io, { interactive, ...(options.command !== undefined ? { command: options.command } : {}) });
  } finally {
    stopRefreshing();
    await kernel.close();
  }
}

/**
 * What a shell reads, writes and answers to: this process's own, or (agent.ts) those of the `oneos`
 * command an agent runs it for.
 */
export interface ShellIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: Record<string, string>;
  readonly cwd: string;
  /** Ends the shell now with `status`, as a signal to it does (its jobs are left as they are). */
  readonly end: (status: number) => void;
  /** Its terminal hung up: SIGHUP to the shell. */
  readonly hangUp: () => void;
  /** Settles with the status the shell ends with when its caller goes (an agent's: agent.ts). */
  readonly ended?: Promise<number>;
}

function shellCommon(io: ShellIo, user: string, interactive: boolean, command: string | undefined) {
  return {
    user,
    interactive,
    stdin: io.stdin,
    stdout: io.stdout,
    stderr: io.stderr,
    historyFile: join(oneosHome(), "history"),
    ...(command !== undefined ? { command } : {}),
  };
}

/**
 * Runs a shell of `session` on the cluster at `url` over `kernel`, in the process table on its home
 * node (the node whose NATS server it talks to): its cd, globbing and builtins' redirections see that
 * node's view of the tree. With CloudFS, `$HOME` is `/home/USER` in CloudFS (created on first use)
 * and the shell starts there, so every node sees the same files.
 */
export async function clusterShell(
  kernel: KernelClient,
  session: Session,
  url: string,
  io: ShellIo,
  options: { readonly interactive: boolean; readonly command?: string },
): Promise<number> {
  const user = session.user.name;
  const env: Record<string, string> = { ...io.env, USER: user, LOGNAME: user };
  const view = await kernel.nodes();
  const nodes = view.filter((n) => n.effective === "ready");
  const homeNode = nodes.find((n) => n.nats === url) ?? nodes[0];
  if (homeNode === undefined) throw new KernelError("ENONODE", `no ready node in the cluster at ${url}`);
  const fs = new NodeFs(kernel, () => homeNode.name);
  let home = io.env["HOME"] ?? userInfo().homedir;
  let cwd = io.cwd;
  if (homeNode.mount !== null) {
    home = session.user.home;
    cwd = home;
    env["HOME"] = home;
  }
  env["PWD"] = cwd;
  // Both at once: a shell that cannot make its home leaves the process table again.
  const [registered, made] = await Promise.allSettled([
    registerShell(kernel, homeNode.name, options.interactive, io),
    homeNode.mount !== null ? fs.mkdirp(home) : undefined,
  ]);
  if (registered.status === "rejected") throw registered.reason;
  const self = registered.value;
  if (made.status === "rejected") {
    await self.leave(1);
    throw made.reason;
  }
  const executor = await ClusterExecutor.create(kernel, { fs, ppid: self.pid, nodes: view });
  let status = 1;
  try {
    const running = runShell({
      ...shellCommon(io, user, options.interactive, options.command),
      env,
      cwd,
      home,
      executor,
      shellPid: self.pid,
      accounts: clusterAccounts(kernel),
      builtins: new Map([["oneos", oneosBuiltin(kernel)]]),
      killPid: async (pid: number, signal: string) => {
        await kernel.signal(pid, signal);
      },
    });
    // A signal that ends the shell (`io.end`) does not wait for its jobs: in a process of its own it
    // exits; in an agent the line runs on until its jobs end, unheard.
    running.catch(() => undefined);
    status = await Promise.race([running, self.ended, ...(io.ended !== undefined ? [io.ended] : [])]);
    return status;
  } finally {
    executor.close();
    await self.leave(status);
  }
}

/** The shell renews its place in the process table this often (the lease is 10 s). */
const RENEW_MS = 3000;

/**
 * Puts the shell in the cluster's process table on its home node: `$$` is its cluster PID, its
 * commands' PPID, and `oneos kill` reaches it — SIGHUP hangs up its jobs and ends it, SIGKILL ends it,
 * SIGTERM and SIGINT end a non-interactive shell and are ignored by an interactive one (as by bash).
 */
async function registerShell(
  kernel: KernelClient,
  node: string,
  interactive: boolean,
  io: ShellIo,
): Promise<{ pid: number; ended: Promise<number>; leave(status: number): Promise<void> }> {
  const argv = ["oneos", "shell", ...(interactive ? [] : ["-c"])];
  const reply = await kernel.request(node, { type: "register", argv });
  if (reply.type !== "registered") throw new KernelError("EIO", `unexpected reply ${reply.type}`);
  const pid = reply.pid;
  const renew = setInterval(() => {
    void kernel.request(node, { type: "register", argv, pid }).catch(() => undefined);
  }, RENEW_MS);
  renew.unref();
  let end = (_status: number): void => undefined;
  const ended = new Promise<number>((resolve) => (end = resolve));
  const endWith = (status: number): void => {
    end(status);
    io.end(status);
  };
  const sub = kernel.nc.subscribe(registeredSignalSubject(pid), {
    // Anyone may publish here: anything but `{ signal }` is dropped.
    callback: guarded((msg) => {
      const signal = (decode(msg.data) as { signal?: unknown } | null)?.signal;
      if (signal === "SIGHUP") io.hangUp();
      else if (signal === "SIGKILL") endWith(137);
      else if ((signal === "SIGTERM" || signal === "SIGINT") && !interactive) endWith(signal === "SIGTERM" ? 143 : 130);
    }),
  });
  return {
    pid,
    ended,
    async leave(status: number) {
      clearInterval(renew);
      sub.unsubscribe();
      await kernel.request(node, { type: "register", argv, pid, ended: status & 0xff }, 2000).catch(() => undefined);
    },
  };
}

/** The shell's account builtins over the users-and-sessions service, in the shell's session. */
function clusterAccounts(kernel: KernelClient): Accounts {
  const one = (reply: AuthReply): AccountInfo => {
    if (reply.type !== "users" || reply.users[0] === undefined) throw new KernelError("EIO", `unexpected answer ${reply.type}`);
    return reply.users[0];
  };
  return {
    me: () => kernel.session!.user,
    lookup: async (name) => one(await kernel.auth({ type: "users", name })),
    add: async (name, password) => one(await kernel.auth({ type: "useradd", name, ...(password !== undefined ? { password } : {}) })),
    remove: async (name) => {
      await kernel.auth({ type: "userdel", name });
    },
    setPassword: async (name, password, old) => {
      const reply = await kernel.auth({ type: "passwd", name, password, ...(old !== undefined ? { old } : {}) });
      // Our own password: the old session ended with it; this is the new one.
      if (reply.type === "session") kernel.session = { token: reply.token, exp: reply.exp, user: reply.user };
    },
  };
}
