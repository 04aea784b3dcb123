/**
 * Non-local exits of the evaluator. They are thrown through the statement walk and caught where the
 * shell grammar says they end: `exit` at the (sub)shell boundary, `return` at the function call,
 * `break`/`continue` at the loop. They are control flow, not failures.
 */
export class ExitRequest {
  constructor(readonly status: number) {}
}

export class ReturnRequest {
  constructor(readonly status: number) {}
}

export class LoopControl {
  constructor(
    readonly kind: "break" | "continue",
    /** How many enclosing loops are left to unwind (`break 2`). */
    readonly levels: number,
  ) {}
}

/** Ctrl-C reached the foreground job: the rest of the command line is not run. */
export class InterruptRequest {}
