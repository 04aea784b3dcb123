import type { Command } from "commander";
import type { VerbIo } from "./verb-io.js";

/** The verbs both the host CLI and the shell's `oneos` builtin run. */
export const CLIENT_VERBS = ["ps", "nodes", "top", "kill", "logs", "ports", "services", "place"] as const;

/**
 * Registers `CLIENT_VERBS` on `program`. Without `io`: the host CLI's, each with `--nats` and a
 * connection of its own. With `io`: the shell's, on the session's connection and the builtin's streams.
 */
export function addClientVerbs(program: Command, run: (work: Promise<number>) => void, io?: VerbIo): { services: Command } {
  const nats = (c: Command): Command => (io === undefined ? c.option("--nats <url>", "NATS server of the cluster") : c);
  nats(program.command("ps").description("the cluster's process table")
    .option("--json", "JSON output")
    .option("-a, --all", "include ended and lost processes"))
    .action((options: { json?: boolean; all?: boolean; nats?: string }) => run(import("./process-verbs.js").then((m) => m.psVerb(options, io))));

  nats(program.command("nodes").description("the cluster's nodes with state, labels, load, memory and reservations")
    .option("--json", "JSON output"))
    .action((options: { json?: boolean; nats?: string }) => run(import("./nodes-verb.js").then((m) => m.nodesVerb(options, io))));

  nats(program.command("logs").description("the last output of a process (stdout and stderr, or its terminal's), like kubectl logs")
    .argument("<pid>")
    .option("-f, --follow", "keep printing its output until it ends"))
    .action((pid: string, options: { follow?: boolean; nats?: string }) => run(import("./process-verbs.js").then((m) => m.logsVerb(pid, options, io))));

  nats(program.command("kill").description("send a signal to cluster processes: oneos kill [-SIGNAL] PID...")
    .argument("<args...>")
    .allowUnknownOption()
    .helpOption(false))
    .action((args: string[], options: { nats?: string }) => run(import("./process-verbs.js").then((m) => m.killVerb(args, options.nats, io))));

  nats(program.command("top").description("nodes and the busiest processes: live on a terminal (q to quit); inside the shell one frame")
    .option("-n, --iterations <n>", "stop after n refreshes"))
    .action((options: { iterations?: string; nats?: string }) => run(import("./top-verb.js").then((m) => m.topVerb(options, io))));

  nats(program.command("ports").description("the cluster's listening TCP ports: port, node, pid, command")
    .option("--json", "JSON output"))
    .action((options: { json?: boolean; nats?: string }) => run(import("./ports-verb.js").then((m) => m.portsVerb(options, io))));

  const services = nats(program.command("services").description("supervised services: name, node, pid, state, restarts")
    .option("--json", "JSON output"))
    .action((options: { json?: boolean; nats?: string }) => run(import("./service-verbs.js").then((m) => m.servicesVerb(options, io))));

  nats(program.command("place").description("where each command of a line would run now, without running it")
    .argument("<line>", "a shell command line, e.g. '@{cpu=2} make -j2 | @gpu=1 train'")
    .option("--explain", "every node's filter verdict and score"))
    .action((line: string, options: { explain?: boolean; nats?: string }) => run(import("./scheduler-verbs.js").then((m) => m.placeVerb(line, options, io))));
  return { services };
}
