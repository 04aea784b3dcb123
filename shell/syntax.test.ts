import { describe, expect, it } from "vitest";
import { ArithOp, isNode, Op, parse, ShellSyntaxError, type Stmt } from "./syntax.js";

function first(src: string): Stmt {
  const stmt = parse(src).Stmts[0];
  if (stmt === undefined) throw new Error("no statement");
  return stmt;
}

describe("syntax", () => {
  it("names the parser's operator tokens correctly", () => {
    const bin = (src: string): number => {
      const cmd = first(src).Cmd;
      if (!isNode(cmd, "BinaryCmd")) throw new Error("not binary");
      return cmd.Op;
    };
    expect(bin("a && b")).toBe(Op.AndStmt);
    expect(bin("a || b")).toBe(Op.OrStmt);
    expect(bin("a | b")).toBe(Op.Pipe);
    expect(bin("a |& b")).toBe(Op.PipeAll);
    const redir = (src: string): number => first(src).Redirs[0]?.Op ?? -1;
    expect(redir("a > f")).toBe(Op.RdrOut);
    expect(redir("a >> f")).toBe(Op.AppOut);
    expect(redir("a < f")).toBe(Op.RdrIn);
    expect(redir("a 2>&1")).toBe(Op.DplOut);
    expect(redir("a <<E\nx\nE")).toBe(Op.Hdoc);
    expect(redir("a <<-E\nx\nE")).toBe(Op.DashHdoc);
    expect(redir("a <<< x")).toBe(Op.WordHdoc);
    expect(redir("a &> f")).toBe(Op.RdrAll);
    expect(redir("a &>> f")).toBe(Op.AppAll);
    const expOp = (src: string): number => {
      const cmd = first(`echo ${src}`).Cmd;
      if (!isNode(cmd, "CallExpr")) throw new Error("not a call");
      const part = cmd.Args[1]?.Parts[0];
      if (!isNode(part, "ParamExp") || part.Exp === null) throw new Error("no expansion");
      return part.Exp.Op;
    };
    expect(expOp("${a:-x}")).toBe(Op.DefaultUnsetOrNull);
    expect(expOp("${a=x}")).toBe(Op.AssignUnset);
    expect(expOp("${a:?x}")).toBe(Op.ErrorUnsetOrNull);
    expect(expOp("${a+x}")).toBe(Op.AlternateUnset);
    expect(expOp("${a##x}")).toBe(Op.RemLargePrefix);
    expect(expOp("${a%x}")).toBe(Op.RemSmallSuffix);
    const arith = (src: string): number => {
      const cmd = first(`echo $((${src}))`).Cmd;
      if (!isNode(cmd, "CallExpr")) throw new Error("not a call");
      const part = cmd.Args[1]?.Parts[0];
      if (!isNode(part, "ArithmExp") || !isNode(part.X, "BinaryArithm")) throw new Error("not arithmetic");
      return part.X.Op;
    };
    expect(arith("a + b")).toBe(ArithOp.Add);
    expect(arith("a * b")).toBe(ArithOp.Mul);
    expect(arith("a / b")).toBe(ArithOp.Quo);
    expect(arith("a <= b")).toBe(ArithOp.Leq);
    expect(arith("a += b")).toBe(ArithOp.AddAssgn);
  });

  it("reports a syntax error with line and column, and whether more input could complete it", () => {
    expect(() => parse("echo 'open")).toThrow(ShellSyntaxError);
    try {
      parse("if true; then\n  echo x");
    } catch (err: unknown) {
      expect(err).toBeInstanceOf(ShellSyntaxError);
      expect((err as ShellSyntaxError).incomplete).toBe(true);
      expect((err as ShellSyntaxError).message).toMatch(/^\d+:\d+: /);
    }
    try {
      parse("echo )");
    } catch (err: unknown) {
      expect((err as ShellSyntaxError).incomplete).toBe(false);
      expect((err as ShellSyntaxError).message).toMatch(/^1:6: /);
    }
  });
});
