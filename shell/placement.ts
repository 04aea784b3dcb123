import { KernelError } from "../pseudokernel/index.js";
import { ANY_NODE, parsePlacementPrefix, specOf, type PlacementSpec } from "../scheduler/index.js";
import type { Placement } from "./executor.js";
import { isNode, Op, parse, type Stmt, type Word } from "./syntax.js";

/** What the `@...` first word of a simple command asks for. */
export type PlacementRequest = Placement | { readonly kind: "all" };

/** A placement with the scheduler's whole request (now part of `Placement` itself). */
export type ScheduledPlacement = Placement;

/**
 * Reads a placement prefix from a command's first word, before any expansion: only a plain, unquoted
 * literal counts (so `"@n2"` or `$x` stay ordinary arguments). Returns null when the word is not a
 * placement prefix. Syntax (see `parsePlacementPrefix` in scheduler/): `@n2`, `@gpu=1`, `@zone=a/b`,
 * `@arch!=arm`, `@gpu=1,zone=a`, `@{cpu=2,mem=512M}`, `@n2{cpu=1}`, `@gpu=1{mem=1G}`, `@*`.
 */
export function placementOf(word: Word | undefined): PlacementRequest | null {
  if (word === undefined || word.Parts.length !== 1) return null;
  const part = word.Parts[0];
  if (!isNode(part, "Lit")) return null;
  const text = part.Value;
  if (!text.startsWith("@") || text.length < 2 || text.includes("\\")) return null;
  let prefix;
  try {
    prefix = parsePlacementPrefix(text.slice(1));
  } catch (error) {
    const invalid = error instanceof KernelError ? error.message : String(error);
    const bad = { kind: "auto" as const, spec: ANY_NODE, invalid };
    return bad;
  }
  if (prefix === null) return null;
  if (prefix.kind === "all") return prefix;
  const spec = prefix.spec;
  const plain = spec.resources.cpu === 0 && spec.resources.mem === 0;
  const only = spec.labels[0];
  if (plain && spec.node !== undefined) return { kind: "node", node: spec.node };
  if (plain && spec.labels.length === 1 && only !== undefined && only.op === "in" && only.values.length === 1) {
    return { kind: "label", key: only.key, value: only.values[0]! };
  }
  // Extra fields ride along on a plain Placement (the executor contract stays node/label/auto).
  const scheduled = spec.node !== undefined ? { kind: "node" as const, node: spec.node, spec } : { kind: "auto" as const, spec };
  return scheduled;
}

/** The scheduler's request for a placement (the full one when the prefix carried it). */
export function placementSpec(placement: Placement): PlacementSpec {
  return (placement as ScheduledPlacement).spec ?? specOf(placement);
}

/** Why the prefix cannot be used (a bad resource request), or undefined. */
export function placementProblem(placement: Placement): string | undefined {
  return (placement as ScheduledPlacement).invalid;
}

/** One simple command of a command line, with where it asks to run (for `oneos place --explain`). */
export interface PlannedCommand {
  /** The command's text without its placement prefix. */
  readonly text: string;
  readonly placement: PlacementRequest;
  /** Commands joined by `|` share a pipeline number; `stage` counts from 0 within it. */
  readonly pipeline: number;
  readonly stage: number;
}

/**
 * The simple commands of a command line in order, grouped into pipelines, without running anything.
 * Commands inside `{ }`, `( )`, `if`, loops and functions bodies are included as written once.
 */
export function commandsOf(src: string): PlannedCommand[] {
  const out: PlannedCommand[] = [];
  let pipeline = 0;
  const stmts = (list: readonly Stmt[]): void => {
    for (const s of list) {
      stmt(s, null);
    }
  };
  const stmt = (s: Stmt, inPipe: { stage: number } | null): void => {
    const cmd = s.Cmd;
    if (isNode(cmd, "CallExpr")) {
      if (cmd.Args.length === 0) return;
      const placement = placementOf(cmd.Args[0]);
      const words = placement === null ? cmd.Args : cmd.Args.slice(1);
      const first = words[0];
      const last = words[words.length - 1];
      const text = first === undefined || last === undefined ? "" : src.slice(first.Pos().Offset(), last.End().Offset());
      const stage = inPipe === null ? 0 : inPipe.stage++;
      if (inPipe === null) pipeline++;
      out.push({ text, placement: placement ?? { kind: "auto" }, pipeline, stage });
    } else if (isNode(cmd, "BinaryCmd")) {
      if (cmd.Op === Op.Pipe || cmd.Op === Op.PipeAll) {
        const group = inPipe ?? { stage: 0 };
        if (inPipe === null) pipeline++;
        stmt(cmd.X, group);
        stmt(cmd.Y, group);
      } else {
        stmt(cmd.X, null);
        stmt(cmd.Y, null);
      }
    } else if (isNode(cmd, "Block") || isNode(cmd, "Subshell")) {
      stmts(cmd.Stmts);
    } else if (isNode(cmd, "IfClause")) {
      stmts(cmd.Cond);
      stmts(cmd.Then);
      if (cmd.Else !== null) stmts([...cmd.Else.Cond, ...cmd.Else.Then]);
    } else if (isNode(cmd, "WhileClause")) {
      stmts([...cmd.Cond, ...cmd.Do]);
    } else if (isNode(cmd, "ForClause")) {
      stmts(cmd.Do);
    }
  };
  stmts(parse(src).Stmts);
  return out;
}
