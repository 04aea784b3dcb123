import { CommanderError, type Command } from "commander";
import type { Writable } from "node:stream";
import { KernelError } from "../pseudokernel/index.js";

/** Exit codes: 0 success, 1 failure, 2 usage error (as the command line fixes them). */
export const USAGE = 2;

/**
 * Parses `argv` (node's: the first two are the program) with the program `build` makes and runs the
 * verb it chose: its exit status. A failure is told on `err` as `oneos: MESSAGE`.
 */
export async function runProgram(build: (run: (work: Promise<number>) => void) => Command, argv: readonly string[], err: Writable): Promise<number> {
  let work: Promise<number> | undefined;
  const program = build((w) => {
    work = w;
  });
  try {
    await program.parseAsync(argv as string[]);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help" ? 0 : USAGE;
    }
    throw error;
  }
  if (work === undefined) {
    program.outputHelp();
    return USAGE;
  }
  try {
    return await work;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    err.write(`oneos: ${message}\n`);
    return error instanceof KernelError && error.code === "EINVAL" ? USAGE : 1;
  }
}
