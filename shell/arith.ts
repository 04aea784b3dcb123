import { ArithOp, isNode, nodeType, type Word } from "./syntax.js";

/** `$((...))` and `(( ))`: integer arithmetic as bash does it (64-bit wrap-around is not emulated). */
export interface ArithScope {
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  /** Expands a word that is not a bare name or number (`$x`, `${#a}`). */
  expandWord(word: Word): Promise<string>;
}

export class ArithmeticError extends Error {
  override readonly name = "ArithmeticError";
  readonly code = "EARITH";
}

export async function evalArith(expr: unknown, scope: ArithScope): Promise<number> {
  if (isNode(expr, "ParenArithm")) return evalArith(expr.X, scope);
  if (isNode(expr, "Word")) {
    const text = await scope.expandWord(expr);
    return valueOf(text.trim(), scope, 0);
  }
  if (isNode(expr, "UnaryArithm")) return unary(expr.Op, expr.Post, expr.X, scope);
  if (isNode(expr, "BinaryArithm")) return binary(expr.Op, expr.X, expr.Y, scope);
  throw new ArithmeticError(`unsupported arithmetic expression (${nodeType(expr)})`);
}

/** A bare name in arithmetic is its value, itself evaluated (bash follows `a=b; b=3` → 3). */
function valueOf(text: string, scope: ArithScope, depth: number): number {
  if (text === "") return 0;
  const number = parseNumber(text);
  if (number !== null) return number;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(text)) {
    if (depth > 100) throw new ArithmeticError(`${text}: expression recursion level exceeded`);
    return valueOf((scope.get(text) ?? "").trim(), scope, depth + 1);
  }
  throw new ArithmeticError(`${text}: syntax error in expression`);
}

function parseNumber(text: string): number | null {
  let m = /^-?0[xX]([0-9a-fA-F]+)$/.exec(text);
  if (m) return sign(text) * parseInt(m[1] ?? "0", 16);
  m = /^-?0([0-7]+)$/.exec(text);
  if (m) return sign(text) * parseInt(m[1] ?? "0", 8);
  m = /^-?([0-9]+)#([0-9a-zA-Z]+)$/.exec(text);
  if (m) return sign(text) * parseInt(m[2] ?? "0", Number(m[1]));
  if (/^-?[0-9]+$/.test(text)) return Number(text);
  return null;
}

function sign(text: string): number {
  return text.startsWith("-") ? -1 : 1;
}

function nameOf(expr: unknown): string {
  if (isNode(expr, "Word") && expr.Parts.length === 1) {
    const part = expr.Parts[0];
    if (isNode(part, "Lit") && /^[A-Za-z_][A-Za-z0-9_]*$/.test(part.Value)) return part.Value;
  }
  throw new ArithmeticError("attempted assignment to non-variable");
}

async function unary(op: number, post: boolean, x: unknown, scope: ArithScope): Promise<number> {
  switch (op) {
    case ArithOp.Add:
      return evalArith(x, scope);
    case ArithOp.Sub:
      return -(await evalArith(x, scope));
    case ArithOp.Not:
      return (await evalArith(x, scope)) === 0 ? 1 : 0;
    case ArithOp.BitNegation:
      return ~(await evalArith(x, scope));
    case ArithOp.Inc:
    case ArithOp.Dec: {
      const name = nameOf(x);
      const old = valueOf(scope.get(name) ?? "", scope, 0);
      const next = op === ArithOp.Inc ? old + 1 : old - 1;
      scope.set(name, String(next));
      return post ? old : next;
    }
    default:
      throw new ArithmeticError(`unsupported arithmetic operator ${op}`);
  }
}

const ASSIGNING: ReadonlyMap<number, number | null> = new Map<number, number | null>([
  [ArithOp.Assgn, null],
  [ArithOp.AddAssgn, ArithOp.Add],
  [ArithOp.SubAssgn, ArithOp.Sub],
  [ArithOp.MulAssgn, ArithOp.Mul],
  [ArithOp.QuoAssgn, ArithOp.Quo],
  [ArithOp.RemAssgn, ArithOp.Rem],
]);

async function binary(op: number, x: unknown, y: unknown, scope: ArithScope): Promise<number> {
  const assignOp = ASSIGNING.get(op);
  if (assignOp !== undefined) {
    const name = nameOf(x);
    const right = await evalArith(y, scope);
    const value = assignOp === null ? right : apply(assignOp, valueOf(scope.get(name) ?? "", scope, 0), right);
    scope.set(name, String(value));
    return value;
  }
  switch (op) {
    case ArithOp.AndArit:
      return (await evalArith(x, scope)) !== 0 && (await evalArith(y, scope)) !== 0 ? 1 : 0;
    case ArithOp.OrArit:
      return (await evalArith(x, scope)) !== 0 || (await evalArith(y, scope)) !== 0 ? 1 : 0;
    case ArithOp.Comma:
      await evalArith(x, scope);
      return evalArith(y, scope);
    case ArithOp.TernQuest: {
      if (!isNode(y, "BinaryArithm") || y.Op !== ArithOp.TernColon) throw new ArithmeticError("bad ?: expression");
      return (await evalArith(x, scope)) !== 0 ? evalArith(y.X, scope) : evalArith(y.Y, scope);
    }
    default:
      return apply(op, await evalArith(x, scope), await evalArith(y, scope));
  }
}

function apply(op: number, a: number, b: number): number {
  switch (op) {
    case ArithOp.Add:
      return a + b;
    case ArithOp.Sub:
      return a - b;
    case ArithOp.Mul:
      return a * b;
    case ArithOp.Quo:
      if (b === 0) throw new ArithmeticError("division by 0");
      return Math.trunc(a / b);
    case ArithOp.Rem:
      if (b === 0) throw new ArithmeticError("division by 0");
      return a % b;
    case ArithOp.Pow:
      return a ** b;
    case ArithOp.Eql:
      return a === b ? 1 : 0;
    case ArithOp.Neq:
      return a !== b ? 1 : 0;
    case ArithOp.Lss:
      return a < b ? 1 : 0;
    case ArithOp.Gtr:
      return a > b ? 1 : 0;
    case ArithOp.Leq:
      return a <= b ? 1 : 0;
    case ArithOp.Geq:
      return a >= b ? 1 : 0;
    case ArithOp.And:
      return a & b;
    case ArithOp.Or:
      return a | b;
    case ArithOp.Xor:
      return a ^ b;
    case ArithOp.Shl:
      return a << b;
    case ArithOp.Shr:
      return a >> b;
    default:
      throw new ArithmeticError(`unsupported arithmetic operator ${op}`);
  }
}
