import { userInfo } from "node:os";
import { PROCESS_IO, withKernel, write, type VerbIo } from "./verb-io.js";
import type { KV } from "@nats-io/kv";
import { decode, encode, KernelError, retrying, type KernelClient } from "../pseudokernel/index.js";
import {
  ANY_NODE,
  checkServiceName,
  formatPlan,
  formatSpec,
  mergeSpecs,
  openSchedulerBucket,
  parseCpu,
  parseMemory,
  parsePlacementPrefix,
  parseServiceDefinition,
  parseServicesList,
  parseServiceStatus,
  Placer,
  readStrategy,
  SERVICE_DEF_PREFIX,
  SERVICE_STATUS_PREFIX,
  SERVICES_FORGET_SUBJECT,
  SERVICES_LIST_SUBJECT,
  type PlacementSpec,
  type RestartPolicy,
  type ServiceDefinition,
  type ServicesList,
} from "../scheduler/index.js";
import { connectKernel } from "./find-cluster.js";
import { formatTable } from "./table.js";

/** The leader answers from memory; with none answering (a leader change), the bucket is read. */
const LIST_TIMEOUT_MS = 1500;
/** `oneos run` waits this long for the service's first start. */
const RUN_WAIT_MS = 15_000;

export interface RunOptions {
  readonly name: string;
  readonly restart?: string;
  readonly cpu?: string;
  readonly mem?: string;
  readonly cwd?: string;
  readonly nats?: string;
}

async function bucket(kernel: KernelClient): Promise<KV> {
  try {
    return await openSchedulerBucket(kernel.nc);
  } catch (error) {
    throw new KernelError("EIO", `the cluster has no scheduler bucket (are its runtimes current?): ${(error as Error).message}`);
  }
}

/** Every service with its status: from the leader's memory, else from the bucket. */
export async function listServices(kernel: KernelClient): Promise<ServicesList["services"]> {
  try {
    const msg = await kernel.nc.request(SERVICES_LIST_SUBJECT, encode({ type: "list" }), { timeout: LIST_TIMEOUT_MS });
    return parseServicesList(decode(msg.data)).services;
  } catch {
    const kv = await bucket(kernel);
    const defs = new Map<string, ServiceDefinition>();
    const statuses = new Map<string, ReturnType<typeof parseServiceStatus>>();
    for await (const key of await kv.keys("service.>")) {
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== "PUT") continue;
      try {
        if (key.startsWith(SERVICE_DEF_PREFIX)) defs.set(key.slice(SERVICE_DEF_PREFIX.length), parseServiceDefinition(decode(entry.value)));
        if (key.startsWith(SERVICE_STATUS_PREFIX)) statuses.set(key.slice(SERVICE_STATUS_PREFIX.length), parseServiceStatus(decode(entry.value)));
      } catch {
        // a bad record: skipped
      }
    }
    return [...defs.values()].sort((a, b) => a.name.localeCompare(b.name)).map((def) => ({ def, status: statuses.get(def.name) ?? null }));
  }
}

/**
 * `oneos run --name NAME [--restart always|on-failure|never] [--cpu N] [--mem SIZE] [@placement] -- cmd args`:
 * defines a service, checks that some node can take it now (else explains why not and defines
 * nothing), and waits for its first start.
 */
export async function runVerb(args: readonly string[], options: RunOptions): Promise<number> {
  const name = checkServiceName(options.name);
  const restart = (options.restart ?? "always") as RestartPolicy;
  if (!["always", "on-failure", "never"].includes(restart)) {
    throw new KernelError("EINVAL", `--restart ${restart}: expected always, on-failure or never`);
  }
  let spec: PlacementSpec = ANY_NODE;
  let argv = [...args];
  if (argv[0]?.startsWith("@") === true) {
    const prefix = parsePlacementPrefix(argv[0].slice(1));
    if (prefix === null || prefix.kind === "all") throw new KernelError("EINVAL", `${argv[0]}: not a placement for a service`);
    spec = prefix.spec;
    argv = argv.slice(1);
  }
  spec = mergeSpecs(spec, {
    labels: [],
    resources: { cpu: options.cpu === undefined ? 0 : parseCpu(options.cpu), mem: options.mem === undefined ? 0 : parseMemory(options.mem) },
  });
  if (argv.length === 0) throw new KernelError("EINVAL", "usage: oneos run --name NAME [options] [@placement] -- cmd args");
  const cwd = options.cwd ?? "/";
  if (!cwd.startsWith("/")) throw new KernelError("EINVAL", `--cwd ${cwd}: expected an absolute path`);

  const kernel = await connectKernel(options.nats, "oneos-run");
  try {
    const kv = await bucket(kernel);
    const nodes = await kernel.nodes();
    const strategy = await readStrategy(kv).catch(() => "spread" as const);
    const plan = new Placer().plan(spec, nodes, { strategy, lastSeen: () => Date.now() });
    if (plan.chosen === null) {
      process.stderr.write(`oneos: run: ${formatPlan(plan)}\n`);
      return 1;
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("ONEOS_")) env[k] = v;
    const def: ServiceDefinition = { name, argv, env, cwd, user: userInfo().username, restart, placement: spec, created: Date.now() };
    try {
      await kv.create(SERVICE_DEF_PREFIX + name, encode(def));
    } catch (error) {
      throw new KernelError("EINVAL", `service ${name} already exists (oneos services rm ${name})`, { cause: error });
    }
    const deadline = Date.now() + RUN_WAIT_MS;
    for (;;) {
      const status = (await listServices(kernel).catch(() => [])).find((s) => s.def.name === name)?.status ?? null;
      if (status?.state === "running") {
        process.stdout.write(`${name} running on ${status.node} as pid ${status.pid}\n`);
        return 0;
      }
      if (status !== null && status.state !== "pending" && status.message !== undefined) {
        process.stderr.write(`oneos: run: ${name} ${status.state}: ${status.message}\n`);
        return 1;
      }
      if (Date.now() > deadline) {
        process.stderr.write(`oneos: run: ${name} defined, not started after ${RUN_WAIT_MS / 1000} s (oneos services)\n`);
        return 1;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await kernel.close();
  }
}

/** `oneos services [--json]`: name, state, node, pid, restarts, policy, placement, command. */
export async function servicesVerb(options: { json?: boolean; nats?: string }, io: VerbIo = PROCESS_IO): Promise<number> {
  const services = await withKernel(io, options.nats, "oneos-services", listServices);
  {
    if (options.json === true) {
      const out = services.map(({ def, status }) => ({
        name: def.name,
        state: status?.state ?? "pending",
        node: status?.node ?? null,
        pid: status?.pid ?? null,
        restarts: status?.restarts ?? 0,
        restart: def.restart,
        placement: formatSpec(def.placement),
        command: def.argv.join(" "),
        since: status === null ? null : new Date(status.since).toISOString(),
        ...(status?.message !== undefined ? { message: status.message } : {}),
      }));
      await write(io.out, JSON.stringify(out, null, 2) + "\n");
      return 0;
    }
    await write(
      io.out,
      formatTable(
        ["NAME", "STATE", "NODE", "PID", "RESTARTS", "POLICY", "PLACEMENT", "COMMAND"],
        services.map(({ def, status }) => [
          def.name,
          status?.state ?? "pending",
          status?.node ?? "-",
          status?.pid === undefined ? "-" : String(status.pid),
          String(status?.restarts ?? 0),
          def.restart,
          formatSpec(def.placement) || "-",
          def.argv.join(" "),
        ]),
      ),
    );
    return 0;
  }
}

/** `oneos services rm NAME...`: the controller stops each (SIGTERM) and forgets it. */
export async function servicesRmVerb(names: readonly string[], options: { nats?: string }): Promise<number> {
  const kernel = await connectKernel(options.nats, "oneos-services");
  let status = 0;
  try {
    const kv = await bucket(kernel);
    for (const name of names) {
      // Right after a node loss the bucket's stream may be electing a leader: retry a while.
      const key = SERVICE_DEF_PREFIX + checkServiceName(name);
      const entry = await retrying(() => kv.get(key), { timeoutMs: 20_000, what: `read service ${name}` });
      if (entry === null || entry.operation !== "PUT") {
        process.stderr.write(`oneos: services rm: no service ${name}\n`);
        status = 1;
        continue;
      }
      await retrying(() => kv.delete(key), { timeoutMs: 20_000, what: `remove service ${name}` });
      kernel.nc.publish(SERVICES_FORGET_SUBJECT, encode({ name }));
    }
    await kernel.nc.flush();
    return status;
  } finally {
    await kernel.close();
  }
}
