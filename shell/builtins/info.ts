import { isAbsolute, join, resolve } from "node:path";
import { print, type Builtin } from "./builtin.js";

/** `history [n]`: the numbered history list (the interactive front end keeps it). */
export const historyBuiltin: Builtin = async (call) => {
  const all = call.shell.history();
  const count = call.argv[1] === undefined ? all.length : Number(call.argv[1]);
  const start = Math.max(0, all.length - (Number.isFinite(count) ? count : all.length));
  const lines = all.slice(start).map((line, i) => `${String(start + i + 1).padStart(5)}  ${line}\n`);
  await print(call.stdout, lines.join(""));
  return 0;
};

/** `type name...`: builtin, function, or where PATH finds it. */
export function typeBuiltin(isBuiltin: (name: string) => boolean): Builtin {
  return async (call) => {
    let status = 0;
    for (const name of call.argv.slice(1)) {
      if (call.ctx.state.functions.has(name)) await print(call.stdout, `${name} is a function\n`);
      else if (isBuiltin(name)) await print(call.stdout, `${name} is a shell builtin\n`);
      else {
        const path = await findInPath(call.shell.executor.fs, name, call.ctx.state.get("PATH") ?? "", call.ctx.state.cwd);
        if (path === null) {
          await print(call.stderr, `oneos: type: ${name}: not found\n`);
          status = 1;
        } else await print(call.stdout, `${name} is ${path}\n`);
      }
    }
    return status;
  };
}

async function findInPath(
  fs: { stat(path: string): Promise<{ readonly isDirectory: boolean } | null> },
  name: string,
  path: string,
  cwd: string,
): Promise<string | null> {
  if (name.includes("/")) return (await fs.stat(resolve(cwd, name))) === null ? null : name;
  for (const dir of path.split(":")) {
    const candidate = join(isAbsolute(dir) ? dir : resolve(cwd, dir), name);
    const info = await fs.stat(candidate);
    if (info !== null && !info.isDirectory) return candidate;
  }
  return null;
}
