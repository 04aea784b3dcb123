import { KernelClient, KernelError, USER_NAME_PATTERN, type Session } from "../pseudokernel/index.js";
import { clusterCredentials } from "./find-cluster.js";

/**
 * Reads a password: from the terminal with echo off (Ctrl-C or Ctrl-D give up), else from
 * `$ONEOS_PASSWORD`, else the first line of stdin (the rest stays for whoever reads next).
 */
export async function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY !== true) {
    const fromEnv = process.env["ONEOS_PASSWORD"];
    if (fromEnv !== undefined) return fromEnv;
    return await firstLine(stdin);
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = "";
      const onData = (chunk: Buffer): void => {
        for (const ch of chunk.toString("utf8")) {
          if (ch === "\r" || ch === "\n") return finish(() => resolve(typed));
          if (ch === "\u0003" || ch === "\u0004") return finish(() => reject(new KernelError("EPERM", "login cancelled")));
          if (ch === "\u007f" || ch === "\b") typed = [...typed].slice(0, -1).join("");
          else if (ch >= " ") typed += ch;
        }
      };
      const finish = (then: () => void): void => {
        stdin.off("data", onData);
        process.stderr.write("\n");
        then();
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

async function firstLine(stdin: NodeJS.ReadStream): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const newline = buffered.indexOf(10);
      if (newline < 0) return;
      done();
      const rest = buffered.subarray(newline + 1);
      if (rest.length > 0) stdin.unshift(rest);
      resolve(buffered.subarray(0, newline).toString("utf8").replace(/\r$/, ""));
    };
    const onEnd = (): void => {
      done();
      if (buffered.length > 0) resolve(buffered.toString("utf8"));
      else reject(new KernelError("EPERM", "no password given (stdin ended)"));
    };
    const done = (): void => {
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.pause();
    };
    stdin.on("data", onData);
    stdin.on("end", onEnd);
  });
}

/**
 * Starts the shell's session: `$ONEOS_SESSION` (a token the desktop hands its terminals), else a login
 * as `--user NAME` (asks for the password), else — on the machine that owns the local test cluster,
 * whose admin credentials it can read — root. Takes the shell's connection as it is being made, and
 * hands it back with the session in it (closed if no session could be had).
 */
export async function startShellSession(connecting: Promise<KernelClient>, options: { user?: string | undefined; nats: string }): Promise<{ kernel: KernelClient; session: Session }> {
  const token = process.env["ONEOS_SESSION"];
  const login = options.user !== undefined ? { user: options.user } : token !== undefined && token !== "" ? { token } : undefined;
  if (login !== undefined) {
    const kernel = await connecting;
    try {
      return { kernel, session: await resumeOrLogIn(kernel, login) };
    } catch (error) {
      await kernel.close();
      throw error;
    }
  }
  // The root shell's session is issued over an admin connection of its own, made while the shell's connects.
  const [connected, issued] = await Promise.allSettled([
    connecting,
    (async () => await KernelClient.issueSession(options.nats, await clusterCredentials("admin"), "root"))(),
  ]);
  if (connected.status === "rejected") throw connected.reason;
  const kernel = connected.value;
  if (issued.status === "rejected") {
    await kernel.close();
    throw new KernelError("EPERM", `cannot open a root shell with these credentials (${(issued.reason as Error).message}): use --user NAME`);
  }
  kernel.session = issued.value;
  return { kernel, session: issued.value };
}

/** A session from `$ONEOS_SESSION`'s token, or a login as `--user` (asks for the password). */
async function resumeOrLogIn(kernel: KernelClient, login: { token: string } | { user: string }): Promise<Session> {
  if ("token" in login) {
    kernel.session = { token: login.token, exp: Date.now() + 60_000, user: { name: "?", uid: -1, gid: -1, home: "/" } };
    return await kernel.refreshSession();
  }
  if (!USER_NAME_PATTERN.test(login.user)) throw new KernelError("EINVAL", `--user ${login.user}: not a valid user name`);
  const password = await readPassword(`${login.user}'s password: `);
  return await kernel.startSession({ type: "login", user: login.user, password });
}

/** Keeps a long shell's session fresh: renews it when half its life is gone. Returns the stop function. */
export function keepSessionFresh(kernel: KernelClient, onLost: (error: Error) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    const left = (kernel.session?.exp ?? Date.now()) - Date.now();
    timer = setTimeout(() => {
      kernel.refreshSession().then(schedule, (error: Error) => {
        if ((kernel.session?.exp ?? 0) > Date.now()) timer = setTimeout(schedule, 10_000);
        else onLost(error);
      });
    }, Math.max(1000, Math.min(left / 2, 2 ** 31 - 1)));
    timer.unref();
  };
  schedule();
  return () => clearTimeout(timer);
}
