import type { KV } from "@nats-io/kv";
import { headers, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  decode,
  encode,
  followBucket,
  guarded,
  replyTo,
  SESSION_HEADER,
  KernelError,
  nodeSubject,
  parseExitEvent,
  parseNodeReply,
  fromWireError,
  type NodeTable,
  type ProcessTable,
  type SpawnRequest,
} from "../../pseudokernel/index.js";
import {
  backoffMs,
  chooseNode,
  formatPlanFailure,
  openSchedulerBucket,
  parseServiceDefinition,
  parseServiceStatus,
  planPlacement,
  SchedulerSettings,
  SERVICE_DEF_PREFIX,
  SERVICE_STATUS_PREFIX,
  serviceExitSubject,
  SERVICES_FORGET_SUBJECT,
  SERVICES_LIST_SUBJECT,
  shouldRestart,
  STABLE_RUN_MS,
  type Candidate,
  type ServiceDefinition,
  type ServiceStatus,
} from "../../scheduler/index.js";

/** How often the leader looks at every service (a lost node is seen at most this much later). */
const TICK_MS = 500;
/** A start that cannot be placed is tried again after this long. */
const UNPLACEABLE_RETRY_MS = 1000;
/** A spawn request to a node gives up after this long (the node is probably being lost). */
const SPAWN_TIMEOUT_MS = 3000;
/** Nodes tried per start when nodes refuse at admission. */
const PLACEMENT_ATTEMPTS = 3;
/** A status write that failed (JetStream electing, not yet enabled) is tried again after this long. */
const WRITE_RETRY_MS = 500;
/**
 * A runtime that becomes leader waits this long before acting, so the statuses the previous leader
 * wrote reach its mirror first (else it could start a second copy of a service it has not seen start).
 */
const LEADER_SETTLE_MS = 1500;
/** Opening the bucket on a cold cluster retries this often. */
const OPEN_RETRY_MS = 1000;

export interface ServiceControllerOptions {
  readonly nc: NatsConnection;
  /** This runtime's node name. */
  readonly node: string;
  readonly nodes: NodeTable;
  readonly procs: ProcessTable;
  /** Replicas when this runtime creates the scheduler bucket. */
  readonly replicas?: number;
  readonly logger: Logger;
  /** A root session token for the controller's spawns and kills (services run as root). */
  readonly session: () => string;
}

/**
 * Keeps services running. Every runtime runs one; only the leader's acts — the lowest-named ready node,
 * the same rule the runtime uses to mark lost nodes — so when the leader itself is lost the next node
 * takes over with the definitions and statuses it has mirrored from the bucket.
 *
 * The leader decides from memory (node liveness from core heartbeats, exits from the process table
 * and exit events) and writes statuses to the bucket behind it: a JetStream election after a lost
 * server delays the record, not the restart.
 */
export class ServiceController {
  #options: ServiceControllerOptions;
  #kv: KV | undefined;
  #settings: SchedulerSettings | undefined;
  #defs = new Map<string, ServiceDefinition>();
  #status = new Map<string, ServiceStatus>();
  #starting = new Set<string>();
  /** Newest status not yet written per service (null: delete); flushed in the background until it lands. */
  #unwritten = new Map<string, ServiceStatus | null>();
  #flushing: Promise<void> | undefined;
  #leaderSince = 0;
  #watcher: { stop(): void } | undefined;
  #subs: Subscription[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #leader = false;

  private constructor(options: ServiceControllerOptions) {
    this.#options = options;
  }

  /** Starts in the background: the bucket is opened (created) when JetStream answers. */
  static start(options: ServiceControllerOptions): ServiceController {
    const controller = new ServiceController(options);
    void controller.#open();
    return controller;
  }

  async #open(): Promise<void> {
    const { nc, replicas } = this.#options;
    while (!this.#closed && this.#kv === undefined) {
      try {
        this.#kv = await openSchedulerBucket(nc, replicas === undefined ? {} : { replicas });
      } catch (error) {
        this.#options.logger.debug({ err: String(error) }, "scheduler bucket not ready");
        await new Promise((r) => setTimeout(r, OPEN_RETRY_MS));
      }
    }
    if (this.#closed || this.#kv === undefined) return;
    this.#settings = SchedulerSettings.follow(this.#kv);
    this.#follow(this.#kv);
    this.#subs.push(
      nc.subscribe(SERVICES_FORGET_SUBJECT, {
        // Anything that is not `{ name: string }` is dropped.
        callback: guarded((msg) => {
          const name = (decode(msg.data) as { name?: unknown } | null)?.name;
          if (typeof name === "string") this.#defs.delete(name);
        }),
      }),
      nc.subscribe(SERVICES_LIST_SUBJECT, {
        callback: guarded((msg) => {
          if (this.#leader) replyTo(msg, { type: "services", node: this.#options.node, services: this.list() });
        }),
      }),
      nc.subscribe(serviceExitSubject("*"), {
        callback: guarded((msg) => {
          if (!this.#leader) return;
          const event = parseExitEvent(decode(msg.data));
          const name = msg.subject.slice(serviceExitSubject("").length);
          const status = this.#status.get(name);
          if (status?.state === "running" && status.pid === event.pid) this.#ended(name, status, event.status, false);
        }),
      }),
    );
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Mirrors definitions always, statuses only while not the leader (the leader's memory is the truth). */
  #follow(kv: KV): void {
    this.#watcher = followBucket(
      kv,
      (entry) => {
        if (entry.key.startsWith(SERVICE_DEF_PREFIX)) {
          const name = entry.key.slice(SERVICE_DEF_PREFIX.length);
          if (entry.operation !== "PUT") this.#defs.delete(name);
          else this.#tryDef(name, entry.value);
        } else if (entry.key.startsWith(SERVICE_STATUS_PREFIX) && !this.#leader) {
          const name = entry.key.slice(SERVICE_STATUS_PREFIX.length);
          if (entry.operation !== "PUT") this.#status.delete(name);
          else {
            try {
              this.#status.set(name, parseServiceStatus(decode(entry.value)));
            } catch {
              // not a valid status: ignored
            }
          }
        }
      },
      "service.>",
    );
  }

  #headers(): ReturnType<typeof headers> {
    const h = headers();
    h.set(SESSION_HEADER, this.#options.session());
    return h;
  }

  #tryDef(name: string, value: Uint8Array): void {
    try {
      const def = parseServiceDefinition(decode(value));
      if (def.name === name) this.#defs.set(name, def);
    } catch (error) {
      this.#options.logger.warn({ service: name, err: String(error) }, "bad service definition");
    }
  }

  /** Every service with its status, by name. */
  list(): { def: ServiceDefinition; status: ServiceStatus | null }[] {
    return [...this.#defs.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((def) => ({ def, status: this.#status.get(def.name) ?? null }));
  }

  #isLeader(now: number): boolean {
    const { nodes, node } = this.#options;
    return nodes.ready(now)[0] === node;
  }

  #tick(): void {
    if (this.#closed) return;
    const now = Date.now();
    const leader = this.#isLeader(now);
    if (leader && !this.#leader) {
      this.#options.logger.info({ services: this.#defs.size }, "service controller leading");
      this.#leaderSince = now;
    }
    this.#leader = leader;
    if (!leader || now - this.#leaderSince < LEADER_SETTLE_MS) return;
    for (const def of this.#defs.values()) {
      if (this.#starting.has(def.name)) continue;
      const status = this.#status.get(def.name);
      if (status === undefined) {
        void this.#start(def, undefined);
        continue;
      }
      switch (status.state) {
        case "running":
          this.#check(def.name, status, now);
          break;
        case "pending":
          void this.#start(def, status);
          break;
        case "backoff":
        case "unplaceable":
          if ((status.nextStart ?? 0) <= now) void this.#start(def, status);
          break;
        case "exited":
          break;
      }
    }
    for (const [name, status] of this.#status) {
      if (this.#defs.has(name) || this.#starting.has(name)) continue;
      // Removed by the user: stop what runs, forget the status.
      this.#status.delete(name);
      if (status.state === "running" && status.node !== undefined && status.pid !== undefined) {
        const request = { type: "signal", pid: status.pid, signal: "SIGTERM" };
        this.#options.nc.request(nodeSubject(status.node, "signal"), encode(request), { timeout: 2000, headers: this.#headers() }).catch(() => undefined);
      }
      this.#write(name, null);
    }
  }

  /** A running service ended when its node is down or the process table says it ended. */
  #check(name: string, status: ServiceStatus, now: number): void {
    if (status.node === undefined || status.pid === undefined) return;
    if (this.#options.nodes.state(status.node, now) === "down") {
      this.#ended(name, status, 255, true);
      return;
    }
    const record = this.#options.procs.records.get(status.pid);
    if (record === undefined || record.node !== status.node) return;
    if (record.state === "exited" || record.state === "killed") this.#ended(name, status, record.status ?? 255, false);
    else if (record.state === "lost") this.#ended(name, status, 255, true);
  }

  #ended(name: string, status: ServiceStatus, exitStatus: number, lost: boolean): void {
    const def = this.#defs.get(name);
    const now = Date.now();
    const lasted = now - status.since >= STABLE_RUN_MS;
    // A lost node is not the program's fault: it restarts at once and does not lengthen the back-off.
    const failures = lost || lasted ? 1 : status.failures + 1;
    const restart = def !== undefined && shouldRestart(def.restart, exitStatus, lost);
    const delay = restart ? backoffMs(failures) : 0;
    const message = lost ? `node ${status.node} lost` : `exited with status ${exitStatus}`;
    this.#options.logger.info({ service: name, status: exitStatus, lost, restart, delay }, "service ended");
    this.#set({
      ...status,
      state: restart ? "backoff" : "exited",
      failures,
      since: now,
      lastStatus: exitStatus,
      message,
      ...(restart ? { nextStart: now + delay } : {}),
    });
  }

  #candidates(now: number): Candidate[] {
    return this.#options.nodes.view(now).map((record) => ({ record, state: record.effective, pending: 0 }));
  }

  async #start(def: ServiceDefinition, previous: ServiceStatus | undefined): Promise<void> {
    this.#starting.add(def.name);
    const restarts = previous?.node === undefined ? (previous?.restarts ?? 0) : previous.restarts + 1;
    const base = { name: def.name, restarts, failures: previous?.failures ?? 0 };
    try {
      const refused = new Set<string>();
      for (let attempt = 0; attempt < PLACEMENT_ATTEMPTS; attempt++) {
        const now = Date.now();
        const candidates = this.#candidates(now);
        const options = { strategy: this.#settings?.strategy ?? "spread", exclude: refused } as const;
        const node = chooseNode(def.placement, candidates, options);
        if (node === null) {
          const why = formatPlanFailure(planPlacement(def.placement, candidates, options));
          this.#set({ ...base, state: "unplaceable", since: now, nextStart: now + UNPLACEABLE_RETRY_MS, message: why });
          return;
        }
        try {
          const pid = await this.#spawn(def, node);
          if (!this.#defs.has(def.name)) {
            // Removed while starting: stop what we just started.
            const request = { type: "signal", pid, signal: "SIGTERM" };
            this.#options.nc.request(nodeSubject(node, "signal"), encode(request), { timeout: 2000, headers: this.#headers() }).catch(() => undefined);
            return;
          }
          this.#options.logger.info({ service: def.name, node, pid, restarts }, "service started");
          this.#set({ ...base, state: "running", node, pid, since: Date.now() });
          return;
        } catch (error) {
          if (error instanceof KernelError && (error.code === "EPLACE" || error.code === "ENONODE" || error.code === "ETIMEDOUT")) {
            refused.add(node);
            continue;
          }
          // The program cannot start (not found, bad cwd): a failure like a crash, with back-off.
          const failures = base.failures + 1;
          const now2 = Date.now();
          this.#set({
            ...base,
            state: "backoff",
            failures,
            since: now2,
            nextStart: now2 + Math.max(UNPLACEABLE_RETRY_MS, backoffMs(failures)),
            message: (error as Error).message,
          });
          return;
        }
      }
      const now = Date.now();
      this.#set({ ...base, state: "unplaceable", since: now, nextStart: now + UNPLACEABLE_RETRY_MS, message: `refused by ${[...refused].join(", ")}` });
    } finally {
      this.#starting.delete(def.name);
    }
  }

  async #spawn(def: ServiceDefinition, node: string): Promise<number> {
    const request: SpawnRequest = {
      type: "spawn",
      argv: def.argv,
      env: { ...def.env, ONEOS_SERVICE: def.name },
      cwd: def.cwd,
      umask: 0o022,
      ppid: 0,
      // Output goes to a node-local log, appended across restarts.
      stdio: [{ kind: "null" }, { kind: "file", path: `/tmp/oneos-service-${def.name}.log`, mode: "a" }, { kind: "stdout" }],
      notify: serviceExitSubject(def.name),
      ...(def.placement.resources.cpu > 0 || def.placement.resources.mem > 0 ? { resources: def.placement.resources } : {}),
    };
    let reply;
    try {
      const msg = await this.#options.nc.request(nodeSubject(node, "spawn"), encode(request), { timeout: SPAWN_TIMEOUT_MS, headers: this.#headers() });
      reply = parseNodeReply(decode(msg.data));
    } catch (error) {
      if (error instanceof KernelError) throw error;
      throw new KernelError("ETIMEDOUT", `node ${node}: ${(error as Error).message}`, { cause: error });
    }
    if (reply.type === "error") throw fromWireError(reply.error);
    if (reply.type !== "spawned") throw new KernelError("EIO", `unexpected reply ${reply.type}`);
    return reply.pid;
  }

  #set(status: ServiceStatus): void {
    this.#status.set(status.name, status);
    this.#write(status.name, status);
  }

  /** Writes (or with null deletes) a status; only the newest per service is kept, retried until written. */
  #write(name: string, status: ServiceStatus | null): void {
    this.#unwritten.set(name, status);
    this.#flushing ??= this.#flush().finally(() => {
      this.#flushing = undefined;
    });
  }

  async #flush(): Promise<void> {
    const kv = this.#kv;
    if (kv === undefined) return;
    while (this.#unwritten.size > 0 && !this.#closed) {
      let failed = false;
      for (const [name, status] of [...this.#unwritten]) {
        const key = SERVICE_STATUS_PREFIX + name;
        try {
          if (status === null) await kv.delete(key);
          else await kv.put(key, encode(status));
          if (this.#unwritten.get(name) === status) this.#unwritten.delete(name);
        } catch (error) {
          failed = true;
          this.#options.logger.debug({ service: name, err: String(error) }, "service status not written yet");
        }
      }
      if (failed) await new Promise((r) => setTimeout(r, WRITE_RETRY_MS));
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#watcher?.stop();
    this.#settings?.stop();
    for (const sub of this.#subs) sub.unsubscribe();
    await Promise.race([this.#flushing, new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
