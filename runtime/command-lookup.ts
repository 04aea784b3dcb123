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
  let denied = false;
  for (const dir of searchPath.split(delimiter)) {
    if (dir === "") continue;
    const path = join(isAbsolute(dir) ? dir : resolve(cwd, dir), name);
    const kind = await executableKind(toLocal(path));
    if (kind === "ok") return path;
    if (kind === "denied") denied = true;
  }
  if (denied) throw new KernelError("EACCES", `${name}: Permission denied`);
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
