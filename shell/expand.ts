import type { ShellFs } from "./executor.js";
import { evalArith, type ArithScope } from "./arith.js";
import { globPaths } from "./glob.js";
import { hasMagic, literalText, matchPattern, patternSource, type Chunk } from "./pattern.js";
import type { ShellState } from "./shell-state.js";
import { isNode, nodeType, Op, type ParamExp, type Stmt, type Word } from "./syntax.js";

/** `${a:?msg}`, `set -u` and bad substitutions: the command is abandoned with status 1. */
export class ExpansionError extends Error {
  override readonly name = "ExpansionError";
  readonly code = "EEXPAND";
}

export interface ExpandContext {
  readonly state: ShellState;
  readonly fs: ShellFs;
  readonly home: string;
  /** `$$`. */
  readonly shellPid: number;
  /** Runs `$(...)` in a subshell and returns its stdout. */
  commandSubstitution(stmts: readonly Stmt[]): Promise<string>;
}

/** How a word is being expanded: a command word (split, glob) or a single string (no split, no glob). */
type Mode = "fields" | "string" | "heredoc";

/**
 * Word expansion in POSIX order: tilde, parameter, command substitution, arithmetic, then field
 * splitting on IFS (only what came from unquoted expansions), filename generation, quote removal.
 */
export class Expander {
  constructor(private readonly ctx: ExpandContext) {}

  /** Command words → argv. */
  async fields(words: readonly Word[]): Promise<string[]> {
    const out: string[] = [];
    for (const word of words) {
      const builder = new FieldBuilder(this.#ifs());
      await this.#word(word, builder, "fields");
      for (const field of builder.finish()) {
        if (hasMagic(field)) {
          const matches = await globPaths(this.ctx.fs, this.ctx.state.cwd, field);
          if (matches.length > 0) {
            out.push(...matches);
            continue;
          }
        }
        out.push(literalText(field));
      }
    }
    return out;
  }

  /** A word as one string: assignments, redirection targets, `case` subjects. */
  async string(word: Word): Promise<string> {
    return literalText(await this.chunks(word));
  }

  /** A word's chunks without splitting (patterns keep which characters were quoted). */
  async chunks(word: Word): Promise<Chunk[]> {
    const builder = new FieldBuilder(null);
    await this.#word(word, builder, "string");
    return builder.finish().flat();
  }

  /**
   * A here-document body: expansions (unless the delimiter was quoted), but quotes are ordinary
   * characters. `<<-` strips the leading tabs of every line.
   */
  async heredoc(word: Word, options: { stripTabs: boolean; expand: boolean }): Promise<string> {
    const builder = new FieldBuilder(null);
    let atLineStart = true;
    for (const part of word.Parts) {
      if (!isNode(part, "Lit")) {
        await this.#part(part, builder, "heredoc", true);
        atLineStart = false;
        continue;
      }
      let value = part.Value;
      if (options.stripTabs) {
        value = value.replace(/\n\t+/g, "\n");
        if (atLineStart) value = value.replace(/^\t+/, "");
      }
      atLineStart = value.endsWith("\n");
      if (options.expand) addHeredocLit(value, builder);
      else builder.literal(value, true);
    }
    return literalText(builder.finish().flat());
  }

  /** `case` pattern test. */
  async matches(pattern: Word, text: string): Promise<boolean> {
    return matchPattern(await this.chunks(pattern), text);
  }

  arithScope(): ArithScope {
    return {
      get: (name) => this.ctx.state.get(name),
      set: (name, value) => this.ctx.state.set(name, value),
      expandWord: (word) => this.string(word),
    };
  }

  #ifs(): string {
    return this.ctx.state.get("IFS") ?? " \t\n";
  }

  async #word(word: Word, out: FieldBuilder, mode: Mode): Promise<void> {
    for (let i = 0; i < word.Parts.length; i++) {
      const part = word.Parts[i];
      if (i === 0 && isNode(part, "Lit") && part.Value.startsWith("~")) {
        const rest = this.#tilde(part.Value, out);
        if (rest !== null) {
          addUnquotedLit(rest, out);
          continue;
        }
      }
      await this.#part(part, out, mode, false);
    }
  }

  /** `~` and `~/x` → $HOME; returns what follows the tilde prefix, or null to leave the word alone. */
  #tilde(value: string, out: FieldBuilder): string | null {
    const slash = value.indexOf("/");
    const prefix = slash === -1 ? value : value.slice(0, slash);
    if (prefix !== "~") return null;
    out.literal(this.ctx.state.get("HOME") ?? this.ctx.home, true);
    return slash === -1 ? "" : value.slice(slash);
  }

  async #part(part: unknown, out: FieldBuilder, mode: Mode, quoted: boolean): Promise<void> {
    if (isNode(part, "Lit")) {
      if (mode === "heredoc") addHeredocLit(part.Value, out);
      else if (quoted) addDoubleQuotedLit(part.Value, out);
      else addUnquotedLit(part.Value, out);
      return;
    }
    if (isNode(part, "SglQuoted")) {
      out.literal(part.Dollar ? ansiC(part.Value) : part.Value, true);
      return;
    }
    if (isNode(part, "DblQuoted")) {
      out.touch();
      for (const inner of part.Parts) await this.#part(inner, out, mode, true);
      return;
    }
    if (isNode(part, "ParamExp")) {
      await this.#param(part, out, quoted || mode !== "fields");
      return;
    }
    if (isNode(part, "CmdSubst")) {
      const text = (await this.ctx.commandSubstitution(part.Stmts)).replace(/\n+$/, "");
      out.expansion(text, quoted || mode !== "fields");
      return;
    }
    if (isNode(part, "ArithmExp")) {
      const value = await evalArith(part.X, this.arithScope());
      out.expansion(String(value), quoted || mode !== "fields");
      return;
    }
    throw new ExpansionError(`unsupported word part: ${nodeType(part)}`);
  }

  async #param(exp: ParamExp, out: FieldBuilder, quoted: boolean): Promise<void> {
    const name = exp.Param.Value;
    const state = this.ctx.state;
    if ((name === "@" || name === "*") && !exp.Length && exp.Exp === null) {
      const values = state.positional;
      if (quoted && name === "*") {
        out.expansion(values.join(this.#ifs().slice(0, 1)), true);
        return;
      }
      values.forEach((value, i) => {
        if (i > 0) out.breakField();
        out.expansion(value, quoted);
      });
      if (quoted && values.length === 0) out.untouchIfEmpty();
      return;
    }
    let value = this.#lookup(name, exp);
    if (exp.Length) {
      out.expansion(String(name === "#" ? state.positional.length : [...(value ?? "")].length), quoted);
      return;
    }
    if (exp.Excl) value = this.#lookup(value ?? "", null);
    if (exp.Exp !== null) {
      const result = await this.#operator(name, value, exp.Exp.Op, exp.Exp.Word, out, quoted);
      if (result === null) return;
      value = result;
    } else if (value === undefined && state.options.nounset) {
      throw new ExpansionError(`${name}: unbound variable`);
    }
    if (exp.Slice !== null && value !== undefined) {
      const scope = this.arithScope();
      const chars = [...value];
      let start = exp.Slice.Offset === null ? 0 : await evalArith(exp.Slice.Offset, scope);
      if (start < 0) start = Math.max(0, chars.length + start);
      let length = exp.Slice.Length === null ? chars.length : await evalArith(exp.Slice.Length, scope);
      if (length < 0) length = Math.max(0, chars.length - start + length);
      value = chars.slice(start, start + length).join("");
    }
    if (exp.Repl !== null && value !== undefined) {
      const source = patternSource(await this.chunks(exp.Repl.Orig), { pathSegment: false });
      const replacement = exp.Repl.With === null ? "" : await this.string(exp.Repl.With);
      if (source !== "") value = value.replace(new RegExp(source, exp.Repl.All ? "g" : ""), () => replacement);
    }
    out.expansion(value ?? "", quoted);
  }

  #lookup(name: string, exp: ParamExp | null): string | undefined {
    const state = this.ctx.state;
    switch (name) {
      case "?":
        return String(state.lastStatus);
      case "$":
        return String(this.ctx.shellPid);
      case "!":
        return state.lastBackgroundPid === null ? undefined : String(state.lastBackgroundPid);
      case "#":
        return String(state.positional.length);
      case "0":
        return "oneos";
      case "-":
        return state.options.errexit ? "e" : "";
    }
    if (/^[0-9]+$/.test(name)) return state.positional[Number(name) - 1];
    if (name === "PIPESTATUS") {
      const index = exp?.Index ?? null;
      const i = index !== null && isNode(index, "Word") ? Number(index.Parts.map(litValue).join("")) : 0;
      return state.pipeStatus.length === 0 ? String(state.lastStatus) : state.pipeStatus[i]?.toString();
    }
    return state.get(name);
  }

  /** `${a:-w}` and friends; null when the result was already emitted. */
  async #operator(
    name: string,
    value: string | undefined,
    op: number,
    word: Word | null,
    out: FieldBuilder,
    quoted: boolean,
  ): Promise<string | undefined | null> {
    const unsetOrNull = value === undefined || value === "";
    const arg = async (): Promise<string> => (word === null ? "" : this.string(word));
    // The word of `${a:-w}` keeps its own quoting and splitting: expand it into the output directly.
    const emitWord = async (): Promise<null> => {
      if (word === null) return null;
      out.touch();
      for (const part of word.Parts) await this.#part(part, out, quoted ? "string" : "fields", quoted);
      return null;
    };
    switch (op) {
      case Op.DefaultUnset:
        return value === undefined ? emitWord() : value;
      case Op.DefaultUnsetOrNull:
        return unsetOrNull ? emitWord() : value;
      case Op.AlternateUnset:
        return value === undefined ? "" : emitWord();
      case Op.AlternateUnsetOrNull:
        return unsetOrNull ? "" : emitWord();
      case Op.AssignUnset:
      case Op.AssignUnsetOrNull: {
        if (op === Op.AssignUnset ? value !== undefined : !unsetOrNull) return value;
        const assigned = await arg();
        this.ctx.state.set(name, assigned);
        return assigned;
      }
      case Op.ErrorUnset:
      case Op.ErrorUnsetOrNull: {
        if (op === Op.ErrorUnset ? value !== undefined : !unsetOrNull) return value;
        const message = await arg();
        throw new ExpansionError(`${name}: ${message === "" ? "parameter null or not set" : message}`);
      }
      case Op.RemSmallPrefix:
      case Op.RemLargePrefix:
      case Op.RemSmallSuffix:
      case Op.RemLargeSuffix: {
        if (value === undefined || word === null) return value;
        return trim(value, await this.chunks(word), op);
      }
      default:
        throw new ExpansionError(`${name}: bad substitution`);
    }
  }
}

function litValue(part: object): string {
  return isNode(part, "Lit") ? part.Value : "";
}

function trim(value: string, pattern: readonly Chunk[], op: number): string {
  const chars = [...value];
  const prefix = op === Op.RemSmallPrefix || op === Op.RemLargePrefix;
  const large = op === Op.RemLargePrefix || op === Op.RemLargeSuffix;
  const lengths = [...Array(chars.length + 1).keys()];
  if (large) lengths.reverse();
  for (const n of lengths) {
    const piece = prefix ? chars.slice(0, n).join("") : chars.slice(chars.length - n).join("");
    if (matchPattern(pattern, piece)) {
      return prefix ? chars.slice(n).join("") : chars.slice(0, chars.length - n).join("");
    }
  }
  return value;
}

/** Builds the fields of one word; see `Expander`. */
class FieldBuilder {
  readonly #fields: Chunk[][] = [];
  #current: Chunk[] = [];
  #touched = false;

  /** `ifs` null: no splitting. */
  constructor(private readonly ifs: string | null) {}

  literal(text: string, quoted: boolean): void {
    this.#touched = true;
    if (text !== "") this.#current.push({ text, quoted });
  }

  /** An expansion's result: split on IFS unless quoted. */
  expansion(text: string, quoted: boolean): void {
    if (quoted || this.ifs === null) {
      this.literal(text, quoted);
      return;
    }
    if (this.ifs === "") {
      if (text !== "") this.literal(text, false);
      return;
    }
    const separators = new RegExp(`[${this.ifs.replace(/[\]\\^-]/g, "\\$&")}]+`);
    const pieces = text.split(separators);
    pieces.forEach((piece, i) => {
      if (i > 0) this.breakField();
      if (piece !== "") this.literal(piece, false);
    });
  }

  /** `""`: an empty field still counts. */
  touch(): void {
    this.#touched = true;
  }

  /** `"$@"` with no parameters produces no field at all. */
  untouchIfEmpty(): void {
    if (this.#current.length === 0) this.#touched = false;
  }

  breakField(): void {
    if (this.#touched) this.#fields.push(this.#current);
    this.#current = [];
    this.#touched = false;
  }

  finish(): Chunk[][] {
    this.breakField();
    return this.#fields;
  }
}

/** Unquoted text: a backslash quotes the next character; backslash-newline disappears. */
function addUnquotedLit(value: string, out: FieldBuilder): void {
  let plain = "";
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] ?? "";
    if (ch === "\\" && i + 1 < value.length) {
      out.literal(plain, false);
      plain = "";
      const next = value[++i] ?? "";
      if (next !== "\n") out.literal(next, true);
      continue;
    }
    plain += ch;
  }
  out.literal(plain, false);
}

/** Inside double quotes a backslash only escapes `$`, backquote, `"`, `\` and newline. */
function addDoubleQuotedLit(value: string, out: FieldBuilder): void {
  out.literal(unescape(value, "$`\"\\\n"), true);
}

/** An unquoted here-document: like double quotes, except `"` is not special. */
function addHeredocLit(value: string, out: FieldBuilder): void {
  out.literal(unescape(value, "$`\\\n"), true);
}

function unescape(value: string, special: string): string {
  let text = "";
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] ?? "";
    const next = value[i + 1];
    if (ch === "\\" && next !== undefined && special.includes(next)) {
      if (next !== "\n") text += next;
      i++;
      continue;
    }
    text += ch;
  }
  return text;
}

/** `$'...'` escapes. */
export function ansiC(text: string): string {
  const simple: Record<string, string> = {
    n: "\n",
    t: "\t",
    r: "\r",
    a: "\x07",
    b: "\b",
    e: "\x1b",
    E: "\x1b",
    f: "\f",
    v: "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
  };
  return text.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (all, esc: string) => {
    if (esc.startsWith("x")) return String.fromCharCode(parseInt(esc.slice(1), 16));
    if (/^[0-7]+$/.test(esc)) return String.fromCharCode(parseInt(esc, 8));
    return simple[esc] ?? all;
  });
}
