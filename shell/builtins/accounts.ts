import type { AccountInfo, Accounts } from "../executor.js";
import { fail, print, type Builtin, type BuiltinCall } from "./builtin.js";
import { readLine } from "./variables.js";

/** The account builtins need the cluster: a local shell has none. */
function accountsOf(call: BuiltinCall): Accounts | undefined {
  return call.shell.accounts;
}

async function attempt(call: BuiltinCall, work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (error) {
    return await fail(call, (error as Error).message);
  }
}

function idLine(user: AccountInfo): string {
  return `uid=${user.uid}(${user.name}) gid=${user.gid}(${user.name}) groups=${user.gid}(${user.name})\n`;
}

/** `whoami`: the shell's user. */
export const whoamiBuiltin: Builtin = async (call) => {
  const accounts = accountsOf(call);
  if (accounts === undefined) return await fail(call, "no cluster users here");
  await print(call.stdout, `${accounts.me().name}\n`);
  return 0;
};

/** `id [NAME]`: uid, gid and groups (each user has one group of their own). */
export const idBuiltin: Builtin = async (call) => {
  const accounts = accountsOf(call);
  if (accounts === undefined) return await fail(call, "no cluster users here");
  const name = call.argv[1];
  if (call.argv.length > 2) return await fail(call, "usage: id [NAME]", 2);
  return await attempt(call, async () => {
    await print(call.stdout, idLine(name === undefined ? accounts.me() : await accounts.lookup(name)));
    return 0;
  });
};

/** A password from the builtin's stdin, one line (`echo secret | passwd alice`, a here-document). */
async function passwordLine(call: BuiltinCall, what: string): Promise<string | undefined> {
  const line = await readLine(call.stdin);
  if (line === null || line.text === "") {
    await fail(call, `${what}: give it on standard input, one line (e.g. passwd NAME <<< 'secret')`);
    return undefined;
  }
  return line.text;
}

/** `useradd [--password-stdin] NAME`: root only; the home is /home/NAME, mode 0700. */
export const useraddBuiltin: Builtin = async (call) => {
  const accounts = accountsOf(call);
  if (accounts === undefined) return await fail(call, "no cluster users here");
  const args = call.argv.slice(1);
  const fromStdin = args[0] === "--password-stdin";
  const names = fromStdin ? args.slice(1) : args;
  if (names.length !== 1 || names[0]!.startsWith("-")) return await fail(call, "usage: useradd [--password-stdin] NAME", 2);
  return await attempt(call, async () => {
    const password = fromStdin ? await passwordLine(call, "useradd") : undefined;
    if (fromStdin && password === undefined) return 1;
    const user = await accounts.add(names[0]!, password);
    await print(call.stdout, idLine(user));
    return 0;
  });
};

/** `userdel NAME`: root only; the home stays. */
export const userdelBuiltin: Builtin = async (call) => {
  const accounts = accountsOf(call);
  if (accounts === undefined) return await fail(call, "no cluster users here");
  if (call.argv.length !== 2) return await fail(call, "usage: userdel NAME", 2);
  return await attempt(call, async () => {
    await accounts.remove(call.argv[1]!);
    return 0;
  });
};

/**
 * `passwd [NAME]`: root sets anyone's password (one line on stdin: the new one); a user changes
 * their own (two lines: the current one, then the new one). Sessions made before it end.
 */
export const passwdBuiltin: Builtin = async (call) => {
  const accounts = accountsOf(call);
  if (accounts === undefined) return await fail(call, "no cluster users here");
  if (call.argv.length > 2) return await fail(call, "usage: passwd [NAME]", 2);
  const me = accounts.me();
  const name = call.argv[1] ?? me.name;
  return await attempt(call, async () => {
    let old: string | undefined;
    if (me.uid !== 0) {
      old = await passwordLine(call, "passwd (current password)");
      if (old === undefined) return 1;
    }
    const password = await passwordLine(call, "passwd (new password)");
    if (password === undefined) return 1;
    await accounts.setPassword(name, password, old);
    await print(call.stderr, `passwd: password updated for ${name}\n`);
    return 0;
  });
};
