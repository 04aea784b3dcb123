import { createRequire } from "node:module";
import type shModule from "mvdan-sh";

/**
 * Loaded with require, not import: an ESM import of this 1.5 MB CommonJS file has Node scan all of
 * it for export names first, a quarter of a CLI call's start-up (measured: `oneos shell -c`).
 */
const sh = createRequire(import.meta.url)("mvdan-sh") as typeof shModule;

/**
 * The shell grammar, as parsed by mvdan-sh (the GopherJS build of mvdan.cc/sh, the parser behind shfmt).
 *
 * The parser hands back Go structs wrapped for JavaScript; their shape is described here by the
 * interfaces below, and a node is only treated as one of them after `syntax.NodeType` said so (see
 * `nodeKind`). Operators arrive as the Go token numbers; `Op` names them (checked in syntax.test.ts).
 */
const { syntax } = sh;

export interface Pos {
  Offset(): number;
  Line(): number;
  Col(): number;
}
interface Positioned {
  Pos(): Pos;
  End(): Pos;
}

export interface File {
  readonly Stmts: readonly Stmt[];
}
export interface Stmt extends Positioned {
  readonly Cmd: Command | null;
  readonly Negated: boolean;
  readonly Background: boolean;
  readonly Redirs: readonly Redirect[];
}
/** A command node; which one is told by `nodeKind`. */
export type Command = object;

export interface CallExpr extends Positioned {
  readonly Assigns: readonly Assign[];
  readonly Args: readonly Word[];
}
export interface BinaryCmd {
  readonly Op: number;
  readonly X: Stmt;
  readonly Y: Stmt;
}
export interface StmtList {
  readonly Stmts: readonly Stmt[];
}
export interface IfClause {
  readonly Cond: readonly Stmt[];
  readonly Then: readonly Stmt[];
  /** `elif` is a nested IfClause with conditions; a plain `else` one has none. */
  readonly Else: IfClause | null;
}
export interface WhileClause {
  readonly Until: boolean;
  readonly Cond: readonly Stmt[];
  readonly Do: readonly Stmt[];
}
export interface ForClause {
  readonly Loop: object;
  readonly Do: readonly Stmt[];
}
export interface WordIter {
  readonly Name: Lit;
  readonly Items: readonly Word[];
}
export interface CaseClause {
  readonly Word: Word;
  readonly Items: readonly CaseItem[];
}
export interface CaseItem {
  readonly Op: number;
  readonly Patterns: readonly Word[];
  readonly Stmts: readonly Stmt[];
}
export interface FuncDecl {
  readonly Name: Lit;
  readonly Body: Stmt;
}
export interface DeclClause {
  readonly Variant: Lit;
  readonly Args: readonly Assign[];
}
export interface ArithmCmd {
  readonly X: object;
}
export interface Assign {
  readonly Name: Lit | null;
  readonly Value: Word | null;
  readonly Naked: boolean;
  readonly Append: boolean;
}
export interface Redirect {
  readonly Op: number;
  readonly N: Lit | null;
  readonly Word: Word;
  readonly Hdoc: Word | null;
}
export interface Word extends Positioned {
  readonly Parts: readonly object[];
}
export interface Lit {
  readonly Value: string;
}
export interface SglQuoted {
  readonly Value: string;
  readonly Dollar: boolean;
}
export interface DblQuoted {
  readonly Parts: readonly object[];
}
export interface ParamExp {
  readonly Short: boolean;
  readonly Excl: boolean;
  readonly Length: boolean;
  readonly Param: Lit;
  readonly Index: object | null;
  readonly Slice: { readonly Offset: object | null; readonly Length: object | null } | null;
  readonly Repl: { readonly All: boolean; readonly Orig: Word; readonly With: Word | null } | null;
  readonly Exp: { readonly Op: number; readonly Word: Word | null } | null;
}
export interface CmdSubst {
  readonly Stmts: readonly Stmt[];
}
export interface ArithmExp {
  readonly X: object;
}
export interface BinaryArithm {
  readonly Op: number;
  readonly X: object;
  readonly Y: object;
}
export interface UnaryArithm {
  readonly Op: number;
  readonly Post: boolean;
  readonly X: object;
}
export interface ParenArithm {
  readonly X: object;
}

interface NodeKinds {
  CallExpr: CallExpr;
  BinaryCmd: BinaryCmd;
  Subshell: StmtList;
  Block: StmtList;
  IfClause: IfClause;
  WhileClause: WhileClause;
  ForClause: ForClause;
  WordIter: WordIter;
  CaseClause: CaseClause;
  FuncDecl: FuncDecl;
  DeclClause: DeclClause;
  ArithmCmd: ArithmCmd;
  Lit: Lit;
  SglQuoted: SglQuoted;
  DblQuoted: DblQuoted;
  ParamExp: ParamExp;
  CmdSubst: CmdSubst;
  ArithmExp: ArithmExp;
  BinaryArithm: BinaryArithm;
  UnaryArithm: UnaryArithm;
  ParenArithm: ParenArithm;
  Word: Word;
}

/** The Go type name of a node (`CallExpr`, `Lit`, ...), or "" for null. */
export function nodeType(node: unknown): string {
  return node === null || node === undefined ? "" : syntax.NodeType(node);
}

/** Narrows a parser node to the interface of its Go type. */
export function isNode<K extends keyof NodeKinds>(node: unknown, kind: K): node is NodeKinds[K] {
  return nodeType(node) === kind;
}

/** Go token numbers of the operators the interpreter handles (mvdan.cc/sh/v3/syntax tokens.go). */
export const Op = {
  AndStmt: 10,
  OrStmt: 11,
  Pipe: 12,
  PipeAll: 13,
  // redirections
  RdrOut: 54,
  AppOut: 55,
  RdrIn: 56,
  RdrInOut: 57,
  DplIn: 58,
  DplOut: 59,
  ClbOut: 60,
  Hdoc: 61,
  DashHdoc: 62,
  WordHdoc: 63,
  RdrAll: 64,
  AppAll: 65,
  // ${a<op>word}
  AlternateUnset: 68,
  AlternateUnsetOrNull: 69,
  DefaultUnset: 70,
  DefaultUnsetOrNull: 71,
  ErrorUnset: 72,
  ErrorUnsetOrNull: 73,
  AssignUnset: 74,
  AssignUnsetOrNull: 75,
  RemSmallSuffix: 76,
  RemLargeSuffix: 77,
  RemSmallPrefix: 78,
  RemLargePrefix: 79,
  // case item terminators
  Break: 30,
  Fallthrough: 31,
  Resume: 32,
} as const;

/** Arithmetic operator tokens (shared numbering with the ones above). */
export const ArithOp = {
  Add: 68,
  Sub: 70,
  Mul: 38,
  Quo: 85,
  Rem: 76,
  Pow: 39,
  Eql: 40,
  Neq: 41,
  Lss: 56,
  Gtr: 54,
  Leq: 42,
  Geq: 43,
  AndArit: 10,
  OrArit: 11,
  And: 9,
  Or: 12,
  Xor: 80,
  Shl: 61,
  Shr: 55,
  Assgn: 74,
  AddAssgn: 44,
  SubAssgn: 45,
  MulAssgn: 46,
  QuoAssgn: 47,
  RemAssgn: 48,
  Comma: 82,
  TernQuest: 72,
  TernColon: 87,
  Not: 34,
  BitNegation: 35,
  Inc: 36,
  Dec: 37,
} as const;

/** A syntax error with the parser's own `line:col: message` text. */
export class ShellSyntaxError extends Error {
  override readonly name = "ShellSyntaxError";
  readonly code = "ESYNTAX";
  constructor(
    message: string,
    /** True when more input could complete the program (an open quote, `if` without `fi`). */
    readonly incomplete: boolean,
  ) {
    super(message);
  }
}

/** Parses a whole program; throws `ShellSyntaxError`. */
export function parse(src: string): File {
  const parser = syntax.NewParser();
  try {
    return parser.Parse(src, "") as File;
  } catch (err: unknown) {
    throw new ShellSyntaxError(parseErrorText(err), isIncompleteError(err));
  }
}

function parseErrorText(err: unknown): string {
  if (typeof err === "object" && err !== null && "Error" in err && typeof err.Error === "function") {
    const text: unknown = err.Error();
    if (typeof text === "string") return text;
  }
  return String(err);
}

function isIncompleteError(err: unknown): boolean {
  if (typeof err === "object" && err !== null && "Incomplete" in err) return err.Incomplete === true;
  return false;
}

/** The source text a node spans (for `jobs` listings and error messages). */
export function sourceOf(src: string, node: Positioned): string {
  return src.slice(node.Pos().Offset(), node.End().Offset());
}
