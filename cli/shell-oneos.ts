import { Command, CommanderError } from "commander";
import type { KernelClient } from "../pseudokernel/index.js";
import type { Builtin } from "../shell/index.js";
import { write, type VerbIo } from "./verb-io.js";

/** Verbs the host CLI has that the shell's `oneos` does not run (yet): what it says of them. */
const HOST_ONLY = new Set(["cluster", "node", "shell", "sessions", "attach", "fs", "df", "audit", "ports", "desktop", "scheduler", "run", "services", "top"]);

/**
 * The shell's `oneos` builtin: the cluster verbs typed inside the shell (`oneos ps | grep sleep`), run
 * on the shell's own connection, so with its session's user and rights, never the admin's: `ps`,
 * `nodes`, `kill`, `logs`, `place`. Their output goes to the builtin's streams, so pipes and
 * redirections work as with any command.
 */
export function oneosBuiltin(kernel: KernelClient): Builtin {
  return async (call) => {
    const io: VerbIo = { kernel, out: call.stdout, err: call.stderr };
    const verb = call.argv[1];
    if (verb !== undefined && HOST_ONLY.has(verb)) {
      await write(call.stderr, `oneos: ${verb}: not available inside the shell; run it from the host's oneos CLI\n`);
      return 2;
    }
    let work: Promise<number> | undefined;
    const program = new Command("oneos")
      .exitOverride()
      .configureOutput({ writeOut: (s) => void call.stdout.write(s), writeErr: (s) => void call.stderr.write(s) })
      .description("cluster verbs inside the shell, as the session's user");
    program.command("ps").description("the cluster's process table")
      .option("--json", "JSON output")
      .option("-a, --all", "include ended and lost processes")
      .action((options: { json?: boolean; all?: boolean }) => {
        work = import("./process-verbs.js").then((m) => m.psVerb(options, io));
      });
    program.command("nodes").description("the cluster's nodes")
      .option("--json", "JSON output")
      .action((options: { json?: boolean }) => {
        work = import("./nodes-verb.js").then((m) => m.nodesVerb(options, io));
      });
    program.command("kill").description("send a signal to cluster processes: oneos kill [-SIGNAL] PID...")
      .argument("<args...>")
      .allowUnknownOption()
      .helpOption(false)
      .action((args: string[]) => {
        work = import("./process-verbs.js").then((m) => m.killVerb(args, undefined, io));
      });
    program.command("logs").description("the last output of a process")
      .argument("<pid>")
      .option("-f, --follow", "keep printing its output until it ends")
      .action((pid: string, options: { follow?: boolean }) => {
        work = import("./process-verbs.js").then((m) => m.logsVerb(pid, options, io));
      });
    program.command("place").description("where each command of a line would run now")
      .argument("<line>")
      .option("--explain", "every node's filter verdict and score")
      .action((line: string, options: { explain?: boolean }) => {
        work = import("./scheduler-verbs.js").then((m) => m.placeVerb(line, options, io));
      });
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
