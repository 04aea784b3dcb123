import { Command, CommanderError } from "commander";
import type { KernelClient } from "../pseudokernel/index.js";
import type { Builtin } from "../shell/index.js";
import { addClientVerbs, CLIENT_VERBS } from "./client-verbs.js";
import { write, type VerbIo } from "./verb-io.js";

/**
 * The shell's `oneos` builtin: the cluster verbs typed inside the shell (`oneos ps | grep sleep`), run
 * on the shell's own connection, so with its session's user and rights, never the admin's. Their
 * output goes to the builtin's streams, so pipes and redirections work as with any command. The
 * other verbs are the host CLI's.
 */
export function oneosBuiltin(kernel: KernelClient): Builtin {
  return async (call) => {
    const io: VerbIo = { kernel, out: call.stdout, err: call.stderr };
    let work: Promise<number> | undefined;
    const program = new Command("oneos")
      .exitOverride()
      .configureOutput({ writeOut: (s) => void call.stdout.write(s), writeErr: (s) => void call.stderr.write(s) })
      .description("cluster verbs inside the shell, as the session's user");
    addClientVerbs(program, (w) => (work = w), io);
    const verb = call.argv[1];
    if (verb !== undefined && !verb.startsWith("-") && !(CLIENT_VERBS as readonly string[]).includes(verb)) {
      await write(call.stderr, `oneos: ${verb}: not available inside the shell (it has ${CLIENT_VERBS.join(", ")}); run it from the host's oneos CLI\n`);
      return 2;
    }
    try {
      await program.parseAsync(call.argv.slice(1) as string[], { from: "user" });
    } catch (error) {
      if (error instanceof CommanderError) return error.code === "commander.helpDisplayed" || error.code === "commander.help" ? 0 : 2;
      throw error;
    }
    if (work === undefined) {
      program.outputHelp({ error: true });
      return 2;
    }
    try {
      return await work;
    } catch (error) {
      await write(call.stderr, `oneos: ${(error as Error).message}\n`);
      return 1;
    }
  };
}
