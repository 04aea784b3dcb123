import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { KernelError } from "../pseudokernel/index.js";

/**
 * Whether the user the program runs as may exec it: reaches it (`reach` rejects with EACCES when a
 * directory on the way is not searchable to them) and has an x bit of their class. Absent: root.
 */
export interface ExecAccess {
  readonly uid: number;
  readonly gid: number;
  reach(localPath: string): Promise<void>;
}

/**
 * Finds the executable for `argv[0]` as execvp(3) would, for the user it will run as: a name with a
 * slash is a path (relative to `cwd`); otherwise the first regular file along `PATH` they may
 * execute (one they may not, such as root's own tools under /root, is passed over). Paths are as
 * processes see them; `toLocal` maps them to the runtime's own view (CloudFS paths live under the
 * node's mount point).
 */
export async function lookupCommand(
  name: string,
  searchPath: string,
  cwd: string,
  toLocal: (path: string) => string = (p) => p,
  user?: ExecAccess,
): Promise<string> {
  if (name.includes("/")) {
    const path = isAbsolute(name) ? name : resolve(cwd, name);
    const kind = await executableKind(toLocal(path), user);
    if (kind === "ok") return path;
    if (kind === "missing") throw new KernelError("ENOCMD", `${name}: No such file or directory`);
    throw new KernelError("EACCES", `${name}: Permission denied`);
  }
  // Every directory at once, the first in PATH order wins: one file-system round trip instead of one
  // per directory before the program's (`true` is eighth in a usual root PATH).
  const paths = searchPath
    .split(delimiter)
    .filter((dir) => dir !== "")
    .map((dir) => join(isAbsolute(dir) ? dir : resolve(cwd, dir), name));
  const kinds = await Promise.all(paths.map((path) => executableKind(toLocal(path), user)));
  const found = kinds.indexOf("ok");
  if (found >= 0) return paths[found]!;
  if (kinds.includes("denied")) throw new KernelError("EACCES", `${name}: Permission denied`);
  throw new KernelError("ENOCMD", `${name}: command not found`);
}

async function executableKind(path: string, user: ExecAccess | undefined): Promise<"ok" | "missing" | "denied"> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return st.isDirectory() ? "denied" : "missing";
    await access(path, constants.X_OK);
    if (user === undefined || user.uid === 0) return "ok";
    await user.reach(path);
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
    return (st.mode & bit) !== 0 ? "ok" : "denied";
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EACCES" ? "denied" : "missing";
  }
}
