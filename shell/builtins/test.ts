import { isAbsolute, resolve } from "node:path";
import type { ShellFs } from "../executor.js";
import { fail, type Builtin } from "./builtin.js";

class TestSyntaxError extends Error {}

/**
 * `test expr` / `[ expr ]`: strings, integers, `-e -f -d` on the shell's file system, `!`, `-a`, `-o`,
 * parentheses. (`-r -w -x` need permission bits ShellFs does not expose: they test existence.)
 */
export function testBuiltin(bracket: boolean): Builtin {
  return async (call) => {
    let args = call.argv.slice(1);
    if (bracket) {
      if (args.at(-1) !== "]") return fail(call, "missing `]'", 2);
      args = args.slice(0, -1);
    }
    try {
      const parser = new TestParser(args, call.shell.executor.fs, call.ctx.state.cwd);
      return (await parser.evaluate()) ? 0 : 1;
    } catch (err: unknown) {
      if (err instanceof TestSyntaxError) return fail(call, err.message, 2);
      throw err;
    }
  };
}

const FILE_TESTS = new Set(["-e", "-f", "-d", "-r", "-w", "-x", "-s", "-a"]);
const BINARY = new Set(["=", "==", "!=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "<", ">"]);

class TestParser {
  #i = 0;
  constructor(
    private readonly args: readonly string[],
    private readonly fs: ShellFs,
    private readonly cwd: string,
  ) {}

  async evaluate(): Promise<boolean> {
    if (this.args.length === 0) return false;
    const value = await this.#or();
    if (this.#i < this.args.length) throw new TestSyntaxError(`${this.args[this.#i] ?? ""}: unexpected argument`);
    return value;
  }

  async #or(): Promise<boolean> {
    let value = await this.#and();
    while (this.args[this.#i] === "-o") {
      this.#i++;
      const right = await this.#and();
      value = value || right;
    }
    return value;
  }

  async #and(): Promise<boolean> {
    let value = await this.#not();
    while (this.args[this.#i] === "-a") {
      this.#i++;
      const right = await this.#not();
      value = value && right;
    }
    return value;
  }

  async #not(): Promise<boolean> {
    if (this.args[this.#i] === "!" && this.#i + 1 < this.args.length) {
      this.#i++;
      return !(await this.#not());
    }
    return this.#primary();
  }

  async #primary(): Promise<boolean> {
    const a = this.args[this.#i];
    if (a === undefined) throw new TestSyntaxError("argument expected");
    if (a === "(") {
      this.#i++;
      const value = await this.#or();
      if (this.args[this.#i] !== ")") throw new TestSyntaxError("`)' expected");
      this.#i++;
      return value;
    }
    const op = this.args[this.#i + 1];
    const b = this.args[this.#i + 2];
    if (op !== undefined && BINARY.has(op) && b !== undefined) {
      this.#i += 3;
      return binary(a, op, b);
    }
    if (a.startsWith("-") && a.length === 2 && op !== undefined) {
      this.#i += 2;
      return this.#unary(a, op);
    }
    this.#i++;
    return a !== "";
  }

  async #unary(op: string, operand: string): Promise<boolean> {
    if (op === "-n") return operand !== "";
    if (op === "-z") return operand === "";
    if (FILE_TESTS.has(op)) {
      const info = await this.fs.stat(isAbsolute(operand) ? operand : resolve(this.cwd, operand));
      if (op === "-d") return info?.isDirectory ?? false;
      if (op === "-f") return info !== null && !info.isDirectory;
      return info !== null;
    }
    throw new TestSyntaxError(`${op}: unary operator expected`);
  }
}

function binary(a: string, op: string, b: string): boolean {
  switch (op) {
    case "=":
    case "==":
      return a === b;
    case "!=":
      return a !== b;
    case "<":
      return a < b;
    case ">":
      return a > b;
  }
  const x = integer(a);
  const y = integer(b);
  switch (op) {
    case "-eq":
      return x === y;
    case "-ne":
      return x !== y;
    case "-lt":
      return x < y;
    case "-le":
      return x <= y;
    case "-gt":
      return x > y;
    default:
      return x >= y;
  }
}

function integer(text: string): number {
  if (!/^\s*-?[0-9]+\s*$/.test(text)) throw new TestSyntaxError(`${text}: integer expression expected`);
  return Number(text);
}
