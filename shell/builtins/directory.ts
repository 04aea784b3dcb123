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
