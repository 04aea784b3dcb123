#!/usr/bin/env node
import { Command } from "commander";
// Each verb's module is loaded when it runs: a client verb pays only for what it uses (the runtime,
// the launcher and the shell's parser cost 0.1–0.4 s each to load).
import type { nodeVerb } from "./node-verb.js";
import type { runVerb } from "./service-verbs.js";
import { addClientVerbs } from "./client-verbs.js";
import { runProgram } from "./run-program.js";

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function build(run: (work: Promise<number>) => void): Command {
  const program = new Command("oneos")
    .description("A distributed operating system made of middleware: one POSIX system over many nodes.")
    .showHelpAfterError()
    .exitOverride()
    .configureHelp({ showGlobalOptions: true })
    // Before or after the verb. The same as ONEOS_CREDS=FILE: the verbs and what they start read it there.
    .option("--creds <file>", "credentials file to connect with (default: $ONEOS_CREDS, else the local test cluster's)");
  program.hook("preAction", (_program, action) => {
    const creds = (action.optsWithGlobals() as { creds?: string }).creds;
    if (creds !== undefined) process.env["ONEOS_CREDS"] = creds;
  });

  const cluster = program
    .command("cluster")
    .description("the local test cluster; alone: start it, open the shell, stop it when the shell exits")
    .option("--nodes <n>", "number of nodes", "3")
    .action((options: { nodes: string }) =>
      run(import("./cluster-foreground.js").then((m) => m.clusterForegroundVerb(options))),
    );
  cluster.command("up").description("start the local test cluster detached; returns when every node is ready")
    .option("--nodes <n>", "number of nodes", "3")
    .action((options: { nodes: string }) => run(import("./cluster-verbs.js").then((m) => m.clusterUpVerb(options))));
  cluster.command("down").description("stop every node of the local test cluster")
    .option("--purge", "also delete the cluster's data")
    .action((options: { purge?: boolean }) => run(import("./cluster-verbs.js").then((m) => m.clusterDownVerb(options))));
  cluster.command("status").description("the local test cluster's nodes")
    .option("--json", "JSON output")
    .action((options: { json?: boolean }) => run(import("./cluster-verbs.js").then((m) => m.clusterStatusVerb(options))));
  cluster.command("kill").description("hard-kill a node's runtime, its processes and its NATS server (a machine loss)")
    .argument("<node>")
    .action((node: string) => run(import("./cluster-verbs.js").then((m) => m.clusterKillVerb(node))));
  cluster.command("restart").description("start a node again")
    .argument("<node>")
    .action((node: string) => run(import("./cluster-verbs.js").then((m) => m.clusterRestartVerb(node))));

  // Started by the `oneos` command (oneos.cts), not by hand: see agent.ts.
  program.command("agent", { hidden: true }).description("keep the local cluster's connections for later oneos commands")
    .action(() => run(import("./agent.js").then((m) => m.agentVerb())));

  program.command("node").description("run a runtime on this machine, joining an existing cluster (--creds FILE: its node-NAME.creds)")
    .requiredOption("--nats <url>", "NATS server of the cluster")
    .requiredOption("--name <name>", "this node's name")
    .option("--label <k=v>", "a label (repeatable)", collect)
    .option("--state-dir <dir>", "node-local state directory")
    .option("--replicas <n>", "replicas for cluster buckets created by this node")
    .option("--cloudfs <mode>", "mount CloudFS: required | auto | off", "auto")
    .option("--hostname <name>", "the host name this node's processes see, in a UTS namespace of their own (default: the machine's)")
    .action((options: Parameters<typeof nodeVerb>[0]) => run(import("./node-verb.js").then((m) => m.nodeVerb(options))));

  program.command("shell").description("the oneos shell (interactive, or -c LINE like sh -c)")
    .option("-c <line>", "run one command line and exit with its status")
    .option("--nats <url>", "NATS server of the cluster (default: the local test cluster)")
    .option("--local", "run commands on this machine only (debugging)")
    .option("--user <name>", "log in as this cluster user (asks for the password; without: root, on the cluster owner's machine)")
    .action((options: { c?: string; nats?: string; local?: boolean; user?: string }) =>
      run(import("./shell-verb.js").then((m) => m.shellVerb({
        ...(options.c !== undefined ? { command: options.c } : {}),
        ...(options.nats !== undefined ? { nats: options.nats } : {}),
        ...(options.local === true ? { local: true } : {}),
        ...(options.user !== undefined ? { user: options.user } : {}),
      }))),
    );

  const { services } = addClientVerbs(program, run);

  program.command("sessions").description("processes running on a terminal, attached or detached")
    .option("--json", "JSON output")
    .option("--nats <url>", "NATS server of the cluster")
    .action((options: { json?: boolean; nats?: string }) =>
      run(import("./session-verbs.js").then((m) => m.sessionsVerb(options))),
    );

  program.command("attach").description("re-enter a process's terminal wherever it runs (detach: Ctrl-] d)")
    .argument("<pid>")
    .option("--nats <url>", "NATS server of the cluster")
    .action((pid: string, options: { nats?: string }) =>
      run(import("./session-verbs.js").then((m) => m.attachVerb(pid, options))),
    );

  const fs = program.command("fs").description("CloudFS tools");
  fs.command("bench").description("big-file and small-file throughput of a directory (default: CloudFS)")
    .argument("[dir]")
    .option("--size <MiB>", "size of the big file in MiB", "1024")
    .option("--files <n>", "number of 128 KiB files", "1000")
    .action((dir: string | undefined, options: { size?: string; files?: string }) =>
      run(import("./fs-verbs.js").then((m) => m.fsBenchVerb(dir, options))),
    );

  program.command("df").description("what CloudFS stores in the cluster")
    .option("--json", "JSON output")
    .option("--nats <url>", "NATS server of the cluster")
    .action((options: { json?: boolean; nats?: string }) => run(import("./fs-verbs.js").then((m) => m.dfVerb(options))));

  program.command("audit").description("the audit log: logins, spawns, kills and user changes, one JSON line each (admin only)")
    .option("--last <n>", "only the last N events")
    .option("-f, --follow", "keep printing new events")
    .option("--nats <url>", "NATS server of the cluster")
    .action((options: { last?: string; follow?: boolean; nats?: string }) => run(import("./audit-verb.js").then((m) => m.auditVerb(options))));

  program.command("desktop").description("the web desktop: serves it and prints its address with the login token")
    .option("--port <port>", "TCP port (default: any free port)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--nats <url>", "NATS server of the cluster (default: the local test cluster)")
    .option("--shell-creds <file>", "credentials of the shells in its terminals (default: the local test cluster's shell identity)")
    .action((options: { port?: string; host?: string; nats?: string; shellCreds?: string }) =>
      run(import("./desktop-verb.js").then((m) => m.desktopVerb(options))),
    );

  program.command("scheduler").description("scheduler settings: oneos scheduler [set strategy spread|binpack]")
    .argument("[args...]")
    .option("--nats <url>", "NATS server of the cluster")
    .action((args: string[], options: { nats?: string }) => run(import("./scheduler-verbs.js").then((m) => m.schedulerVerb(args, options))));

  program.command("run").description("start a supervised service: oneos run --name NAME [options] [@placement] -- cmd args")
    .requiredOption("--name <name>", "service name")
    .option("--restart <policy>", "always | on-failure | never", "always")
    .option("--cpu <cores>", "CPU to reserve (cores: 2, 0.5, 500m)")
    .option("--mem <size>", "memory to reserve (512M, 2G)")
    .option("--cwd <dir>", "working directory on the node", "/")
    .option("--nats <url>", "NATS server of the cluster")
    .argument("<args...>")
    .action((args: string[], options: Parameters<typeof runVerb>[1]) => run(import("./service-verbs.js").then((m) => m.runVerb(args, options))));

  services.command("rm").description("stop services and forget them")
    .argument("<names...>")
    .option("--nats <url>", "NATS server of the cluster")
    .action((names: string[], options: { nats?: string }) => run(import("./service-verbs.js").then((m) => m.servicesRmVerb(names, options))));

  return program;
}

async function main(argv: readonly string[]): Promise<number> {
  return await runProgram(build, argv, process.stderr);
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
    // Give stdout a chance to flush; then leave even if a library left a handle open.
    setImmediate(() => process.exit(code));
  },
  (error: unknown) => {
    process.stderr.write(`oneos: internal error: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
