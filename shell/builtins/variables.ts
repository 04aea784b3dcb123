import type { Readable } from "node:stream";
import type { ShellState } from "../shell-state.js";
import { fail, print, type Builtin } from "./builtin.js";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `export` without arguments, as bash prints it. */
export function exportListing(state: ShellState): string {
  return [...state.exported]
    .filter((name) => state.get(name) !== undefined)
    .sort()
    .map((name) => `declare -x ${name}="${(state.get(name) ?? "").replace(/(["\\$`])/g, "\\$1")}"\n`)
    .join("");
}

/** `export NAME[=value]...` (normally parsed as a declaration; this is the `command export` path). */
export const exportBuiltin: Builtin = async (call) => {
  const state = call.ctx.state;
  const args = call.argv.slice(1).filter((a) => a !== "-p");
  if (args.length === 0) {
    await print(call.stdout, exportListing(state));
    return 0;
  }
  for (const arg of args) {
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (!NAME.test(name)) return fail(call, `\`${arg}': not a valid identifier`);
    if (eq !== -1) state.set(name, arg.slice(eq + 1));
    state.exported.add(name);
  }
  return 0;
};

/** `unset [-v|-f] NAME...`. */
export const unsetBuiltin: Builtin = async (call) => {
  let functions = false;
  for (const arg of call.argv.slice(1)) {
    if (arg === "-f") functions = true;
    else if (arg === "-v") functions = false;
    else if (functions) call.ctx.state.functions.delete(arg);
    else call.ctx.state.unset(arg);
  }
  return 0;
};

const SET_FLAGS: Readonly<Record<string, "errexit" | "nounset" | "xtrace">> = { e: "errexit", u: "nounset", x: "xtrace" };

/** `set [-eux] [+eux] [-o name] [-- args...]`; without arguments lists the variables. */
export const setBuiltin: Builtin = async (call) => {
  const state = call.ctx.state;
  const args = call.argv.slice(1);
  if (args.length === 0) {
    const lines = [...state.vars].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${quote(v)}\n`);
    await print(call.stdout, lines.join(""));
    return 0;
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "--") {
      state.positional = args.slice(i + 1);
      return 0;
    }
    if (arg === "-o" || arg === "+o") {
      const option = args[++i];
      const flag = Object.values(SET_FLAGS).find((o) => o === option);
      if (flag === undefined) return fail(call, `${option ?? ""}: invalid option name`, 2);
      state.options[flag] = arg === "-o";
      continue;
    }
    if (/^[-+][a-zA-Z]+$/.test(arg)) {
      for (const letter of arg.slice(1)) {
        const flag = SET_FLAGS[letter];
        if (flag === undefined) return fail(call, `-${letter}: invalid option`, 2);
        state.options[flag] = arg.startsWith("-");
      }
      continue;
    }
    state.positional = args.slice(i);
    return 0;
  }
  return 0;
};

function quote(value: string): string {
  return /^[A-Za-z0-9_./:,=@%+-]*$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

/** `read [-r] [-p prompt] NAME...`: one line, split on IFS, the last name takes the rest. */
export const readBuiltin: Builtin = async (call) => {
  let raw = false;
  const names: string[] = [];
  const args = call.argv.slice(1);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "-r") raw = true;
    else if (arg === "-p") await print(call.stderr, args[++i] ?? "");
    else names.push(arg);
  }
  if (names.length === 0) names.push("REPLY");
  const line = await readLine(call.stdin);
  if (line === null) {
    for (const name of names) call.ctx.state.set(name, "");
    return 1;
  }
  let text = line.text;
  if (!raw) text = text.replace(/\\(.)/g, "$1");
  const ifs = call.ctx.state.get("IFS") ?? " \t\n";
  const fields = names.length === 1 ? [trimIfs(text, ifs)] : splitForRead(text, ifs, names.length);
  names.forEach((name, i) => call.ctx.state.set(name, fields[i] ?? ""));
  return line.complete ? 0 : 1;
};

function trimIfs(text: string, ifs: string): string {
  const ws = [...ifs].filter((c) => " \t\n".includes(c)).join("");
  if (ws === "") return text;
  const cls = `[${ws.replace(/\t/, "\\t").replace(/\n/, "\\n")}]`;
  return text.replace(new RegExp(`^${cls}+|${cls}+$`, "g"), "");
}

function splitForRead(text: string, ifs: string, count: number): string[] {
  const fields: string[] = [];
  let rest = trimIfs(text, ifs);
  while (fields.length < count - 1 && rest !== "") {
    let i = 0;
    while (i < rest.length && !ifs.includes(rest[i] ?? "")) i++;
    fields.push(rest.slice(0, i));
    rest = trimIfs(rest.slice(i), ifs);
  }
  fields.push(rest);
  return fields;
}

/**
 * Reads one line without consuming more: what follows the newline is pushed back, so `while read`
 * loops share one stream.
 */
export async function readLine(stream: Readable): Promise<{ text: string; complete: boolean } | null> {
  const parts: Buffer[] = [];
  for (;;) {
    const chunk = stream.read() as Buffer | string | null;
    if (chunk === null) {
      if (stream.readableEnded) break;
      const more = await new Promise<boolean>((resolve) => {
        const onReadable = (): void => {
          cleanup();
          resolve(true);
        };
        const onEnd = (): void => {
          cleanup();
          resolve(false);
        };
        const cleanup = (): void => {
          stream.off("readable", onReadable);
          stream.off("end", onEnd);
          stream.off("close", onEnd);
          stream.off("error", onEnd);
        };
        stream.on("readable", onReadable);
        stream.on("end", onEnd);
        stream.on("close", onEnd);
        stream.on("error", onEnd);
      });
      if (!more) break;
      continue;
    }
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    const newline = buffer.indexOf(10);
    if (newline !== -1) {
      parts.push(buffer.subarray(0, newline));
      if (newline + 1 < buffer.length) stream.unshift(buffer.subarray(newline + 1));
      return { text: Buffer.concat(parts).toString("utf8"), complete: true };
    }
    parts.push(buffer);
  }
  if (parts.length === 0) return null;
  return { text: Buffer.concat(parts).toString("utf8"), complete: false };
}

export { NAME as VARIABLE_NAME };
