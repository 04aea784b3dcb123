import type { Stmt } from "./syntax.js";

/** Options changed with `set`. */
export interface ShellOptions {
  /** `set -e`: leave when a command fails outside a condition. */
  errexit: boolean;
  /** `set -u`: expanding an unset variable is an error. */
  nounset: boolean;
  /** `set -x`: trace commands to stderr. */
  xtrace: boolean;
}

/**
 * What a subshell copies and the parent never sees changed: variables, exports, cwd, functions, options,
 * positional parameters. `clone()` is how `( )`, pipeline stages, `$(...)` and `&` get their own.
 */
export class ShellState {
  readonly vars: Map<string, string>;
  readonly exported: Set<string>;
  readonly functions: Map<string, Stmt>;
  readonly options: ShellOptions;
  cwd: string;
  positional: string[];
  lastStatus = 0;
  /** `$!`: PID of the last background command. */
  lastBackgroundPid: number | null = null;
  pipeStatus: number[] = [];
  umask = 0o022;

  constructor(init: {
    vars: Map<string, string>;
    exported: Set<string>;
    cwd: string;
    functions?: Map<string, Stmt>;
    options?: ShellOptions;
    positional?: string[];
  }) {
    this.vars = init.vars;
    this.exported = init.exported;
    this.cwd = init.cwd;
    this.functions = init.functions ?? new Map();
    this.options = init.options ?? { errexit: false, nounset: false, xtrace: false };
    this.positional = init.positional ?? [];
  }

  clone(): ShellState {
    const copy = new ShellState({
      vars: new Map(this.vars),
      exported: new Set(this.exported),
      cwd: this.cwd,
      functions: new Map(this.functions),
      options: { ...this.options },
      positional: [...this.positional],
    });
    copy.lastStatus = this.lastStatus;
    copy.lastBackgroundPid = this.lastBackgroundPid;
    copy.pipeStatus = [...this.pipeStatus];
    copy.umask = this.umask;
    return copy;
  }

  get(name: string): string | undefined {
    return this.vars.get(name);
  }

  set(name: string, value: string): void {
    this.vars.set(name, value);
  }

  unset(name: string): void {
    this.vars.delete(name);
    this.exported.delete(name);
  }

  /** The environment handed to launched commands, with per-command assignments (`X=1 cmd`) on top. */
  environment(extra: ReadonlyMap<string, string> = new Map()): Record<string, string> {
    const env: Record<string, string> = {};
    for (const name of this.exported) {
      const value = this.vars.get(name);
      if (value !== undefined) env[name] = value;
    }
    for (const [name, value] of extra) env[name] = value;
    return env;
  }
}
