import { isAbsolute, resolve } from "node:path";
import { fail, print, type Builtin } from "./builtin.js";

/** `cd [dir]`: no argument → $HOME; `cd -` → $OLDPWD (and prints it). */
export const cdBuiltin: Builtin = async (call) => {
  const state = call.ctx.state;
  const arg = call.argv[1];
  let target: string;
  if (arg === undefined || arg === "") {
    const home = state.get("HOME");
    if (home === undefined) return fail(call, "HOME not set");
    target = home;
  } else if (arg === "-") {
    const old = state.get("OLDPWD");
    if (old === undefined) return fail(call, "OLDPWD not set");
    target = old;
  } else {
    target = arg;
  }
  const path = isAbsolute(target) ? resolve(target) : resolve(state.cwd, target);
  const info = await call.shell.executor.fs.stat(path);
  if (info === null) return fail(call, `${target}: No such file or directory`);
  if (!info.isDirectory) return fail(call, `${target}: Not a directory`);
  state.set("OLDPWD", state.cwd);
  state.cwd = path;
  state.set("PWD", path);
  if (arg === "-") await print(call.stdout, `${path}\n`);
  return 0;
};

export const pwdBuiltin: Builtin = async (call) => {
  await print(call.stdout, `${call.ctx.state.cwd}\n`);
  return 0;
};

/**
 * `umask [-S] [mode]`: prints the file-creation mask (`0022`, or `u=rwx,g=rx,o=rx` with -S), or sets it
 * from an octal mode. Every program the shell starts, on any node, gets it.
 */
export const umaskBuiltin: Builtin = async (call) => {
  const state = call.ctx.state;
  const args = call.argv.slice(1);
  const symbolic = args[0] === "-S";
  const mode = symbolic ? args[1] : args[0];
  if (mode === undefined) {
    const mask = state.umask;
    if (!symbolic) {
      await print(call.stdout, `${mask.toString(8).padStart(4, "0")}\n`);
      return 0;
    }
    const who = (shift: number, name: string): string => {
      const allowed = ~mask >> shift;
      return `${name}=${allowed & 4 ? "r" : ""}${allowed & 2 ? "w" : ""}${allowed & 1 ? "x" : ""}`;
    };
    await print(call.stdout, `${who(6, "u")},${who(3, "g")},${who(0, "o")}\n`);
    return 0;
  }
  if (!/^[0-7]{1,4}$/.test(mode)) return fail(call, `${mode}: octal number out of range`);
  state.umask = Number.parseInt(mode, 8) & 0o777;
  return 0;
};
