import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { KernelError } from "../pseudokernel/index.js";

/**
 * Finds the executable for `argv[0]` as execvp(3) would: a name with a slash is a path (relative to
 * `cwd`); otherwise the first executable regular file along `PATH`. Paths are as processes see them;
 * `toLocal` maps them to the runtime's own view (CloudFS paths live under the node's mount point).
 */
export async function lookupCommand(
  name: string,
  searchPath: string,
  cwd: string,
  toLocal: (path: string) => string = (p) => p,
): Promise<string> {
  if (name.includes("/")) {
    const path = isAbsolute(name) ? name : resolve(cwd, name);
    const kind = await executableKind(toLocal(path));
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
  const kinds = await Promise.all(paths.map((path) => executableKind(toLocal(path))));
  const found = kinds.indexOf("ok");
  if (found >= 0) return paths[found]!;
  if (kinds.includes("denied")) throw new KernelError("EACCES", `${name}: Permission denied`);
  throw new KernelError("ENOCMD", `${name}: command not found`);
}

async function executableKind(path: string): Promise<"ok" | "missing" | "denied"> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return st.isDirectory() ? "denied" : "missing";
    await access(path, constants.X_OK);
    return "ok";
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EACCES" ? "denied" : "missing";
  }
}
