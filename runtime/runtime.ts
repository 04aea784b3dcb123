import { cpus, freemem, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  CLUSTER_PORTS_SUBJECT,
  CLUSTER_PS_LIVE_SUBJECT,
  gatherLiveProcesses,
  CLUSTER_PS_SUBJECT,
  CLUSTER_VIEW_SUBJECT,
  connectNats,
  decode,
  DOWN_AFTER_MS,
  encode,
  heartbeatSubject,
  KernelError,
  loadCredentials,
  nodeSubject,
  natsTransport,
  openClusterBuckets,
  parseNodeRequest,
  parseProcessRecord,
  parseSignal,
  readAll,
  retrying,
  StreamReader,
  StreamWriter,
  toWireError,
  guarded,
  inboxPrefixOf,
  replyTo,
  type ClusterBuckets,
  type ExitEvent,
  type NodeRecord,
  type NodeReply,
  type ProcessRecord,
  type SignalRequest,
  type SpawnRequest,
  type StreamTransport,
} from "../pseudokernel/index.js";
import { ChildRegistry, reapChildren } from "./child-registry.js";
import { FileService } from "./file-service.js";
import { HOST_VIEW, LocalProcess, type LocalExit, type ProcessView } from "./local-process.js";
import { NodeFilesystem } from "./node-filesystem.js";
import { PtyProcess } from "./pty-process.js";
import { RegisteredProcesses } from "./registered-processes.js";
import { DirectServer, NodeTable, ProcessTable } from "../pseudokernel/index.js";
import { FIRST_PID, PidAllocator } from "./pid-allocator.js";
import { Admission } from "./admission.js";
import { ProcessUsageSampler } from "./process-usage.js";
import { ServiceController } from "./services/index.js";
import { Netstack } from "./netstack/index.js";
import { AuditLog, AuthService, canControl, ensureAuditStream, mayControl, UserStore, type Caller } from "./auth/index.js";
import { ROOT_IDENTITY, type FsIdentity } from "./as-user.js";
import { KillRelay } from "./kill-relay.js";
import { ClusterProc, type ClusterProcOptions } from "./cluster-proc.js";
import { existsSync } from "node:fs";
import { access, chown, mkdir } from "node:fs/promises";

/** Heartbeat period; `DOWN_AFTER_MS` in the pseudokernel is four of these. */
const HEARTBEAT_MS = 1000;
/** An ended process stays in the table this long (for `ps -a` and for shells that missed the exit event). */
const ENDED_RECORD_TTL_MS = 5 * 60_000;
/** How long start-up waits for JetStream to answer before giving up. */
const START_TIMEOUT_MS = 60_000;
/**
 * Where a runtime may send a caller's exit or close event (the subject is well-formed: the parser saw
 * to it): nowhere (""), or the shell identity's reply inboxes, where every shell listens — never a
 * runtime's or the admin's; root (the services controller) anywhere.
 */
function mayNotify(subject: string, caller: Caller): boolean {
  return subject === "" || caller.uid === 0 || subject.startsWith(`${inboxPrefixOf("shell")}.`);
}

/**
 * A process's first record is written this long after its start, and not at all if it has ended by
 * then (its final record is): most commands of a pipeline or script live a few milliseconds, and each
 * replicated write costs the three servers CPU that every other request then waits for (measured: a
 * remote `true` 2–3 ms faster). `ps` does not miss them meanwhile: runtimes answer it from memory.
 */
const FIRST_RECORD_DELAY_MS = 20;
/** A relayed kill(2) of a PID not in the table asks the runtimes: answers stop coming after this, or at most this. */
const RELAY_GATHER_STALL_MS = 20;
const RELAY_GATHER_MAX_MS = 300;
/** Ended processes whose last output stays readable (`oneos logs`), newest first. */
const MAX_ENDED_TAILS = 256;
/** On a graceful stop, children get SIGHUP and this long to exit before SIGKILL. */
const STOP_GRACE_MS = 2000;

export interface RuntimeOptions {
  readonly nats: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Where the runtime keeps node-local state (its child registry). */
  readonly stateDir: string;
  /** Replicas for the cluster buckets when this runtime is the one to create them. */
  readonly replicas?: number;
  readonly logger: Logger;
  /**
   * Address on which this node accepts direct stream links from other nodes (default 127.0.0.1:
   * same-machine peers only; others keep using NATS). On real machines, the node's cluster address.
   */
  readonly dataHost?: string;
  /**
   * False: the netstack makes no peer links and carries every connection over NATS (nodes that cannot
   * reach each other's `dataHost`; they would otherwise find out by a 2 s timeout per node).
   */
  readonly peerLinks?: boolean;
  /**
   * CloudFS: `required` (the local test cluster: fail to start without it), `auto` (mount when FUSE and
   * root are there, else run without), `off`.
   */
  readonly cloudfs?: "required" | "auto" | "off";
  /**
   * The host name this node's processes see (`uname -n`), in a UTS namespace of their own: the local
   * test cluster names each node's after the node. Without: the machine's.
   */
  readonly hostname?: string;
  /** This node's credentials file (`node-<name>`: nkey + CA); the CloudFS daemon gets it too. Without: anonymous, plain. */
  readonly credentialsFile?: string;
}

interface Supervised {
  readonly local: LocalProcess | PtyProcess;
  record: ProcessRecord;
  /** KV writes of this record, in order. */
  writes: Promise<unknown>;
}

/**
 * The per-node daemon: joins NATS, claims its node name, heartbeats, spawns and supervises local
 * processes for the cluster, and watches its peers so a lost node's processes are marked `lost`.
 */
export class NodeRuntime {
  readonly name: string;
  readonly nc: NatsConnection;
  readonly started = Date.now();
  #options: RuntimeOptions;
  #buckets: ClusterBuckets;
  #transport: StreamTransport;
  #pids: PidAllocator;
  #nodes: NodeTable;
  #children: ChildRegistry;
  #procs = new Map<number, Supervised>();
  /** Processes that ended, until their records are purged (their last output stays readable). */
  #ended = new Map<number, Supervised>();
  #subscription: Subscription | undefined;
  #viewSubscription: Subscription | undefined;
  #psSubscription: Subscription | undefined;
  #psLiveSubscription: Subscription | undefined;
  #portsSubscription: Subscription | undefined;
  #procTable: ProcessTable;
  #registered: RegisteredProcesses;
  #directServer: DirectServer;
  #filesystem: NodeFilesystem | undefined;
  /** The cluster /proc bound onto the namespace's /proc, if mounted. */
  #clusterProc: ClusterProc | undefined;
  #files: FileService;
  /** What this node's processes see: CloudFS at /home inside the node's namespace, when mounted. */
  #view: ProcessView;
  #timer: NodeJS.Timeout | undefined;
  #markedDown = new Set<string>();
  #purgeTimers = new Set<NodeJS.Timeout>();
  #closing = false;
  #ticking = false;
  #putting = false;
  #log: Logger;
  /** Scheduler: CPU/memory held by resource requests, per-process usage for `top`, the services controller. */
  #admission = new Admission({ cpu: cpus().length, mem: totalmem() });
  #usage = new ProcessUsageSampler();
  #services: ServiceController | undefined;
  /** Ports of this node's servers for the whole cluster, and the other nodes' ports here. */
  #netstack: Netstack | undefined;
  /** Users, sessions and the audit log. */
  #auth!: AuthService;
  #audit: AuditLog;

  private constructor(
    options: RuntimeOptions,
    nc: NatsConnection,
    buckets: ClusterBuckets,
    nodes: NodeTable,
    procTable: ProcessTable,
    directServer: DirectServer,
    filesystem: NodeFilesystem | undefined,
  ) {
    this.#filesystem = filesystem;
    this.#view =
      filesystem === undefined
        ? HOST_VIEW
        : {
            get namespace() {
              return filesystem.namespace;
            },
            get netNamespace() {
              return filesystem.netNamespace;
            },
            get utsNamespace() {
              return filesystem.utsNamespace;
            },
            get pidNamespace() {
              return filesystem.pidNamespace;
            },
            toLocal: (path) => filesystem.toLocal(path),
            mount: filesystem.mountpoint,
          };
    this.#procTable = procTable;
    this.name = options.name;
    this.nc = nc;
    this.#options = options;
    this.#buckets = buckets;
    // Direct links only to runtimes' data endpoints, as their node records (written by runtimes only) name them.
    this.#transport = natsTransport(nc, {
      directServer,
      trustOffer: (offer) =>
        (offer.host === directServer.host && offer.port === directServer.port) ||
        [...nodes.records.values()].some((r) => r.data?.host === offer.host && r.data.port === offer.port),
    });
    this.#directServer = directServer;
    this.#pids = new PidAllocator(buckets.pids);
    this.#nodes = nodes;
    this.#children = new ChildRegistry(join(options.stateDir, "children.json"));
    this.#log = options.logger;
    this.#audit = new AuditLog(nc, options.name);
    this.#registered = new RegisteredProcesses({
      node: options.name,
      procs: buckets.procs,
      allocate: () => this.#pids.allocate(),
      publish: (subject, data) => nc.publish(subject, data),
    });
    this.#files = new FileService(this.#transport, this.#view, (subject, data) => {
      try {
        nc.publish(subject, data);
      } catch {
        // the connection is closing: the waiting writer times out
      }
    });
  }

  static async start(options: RuntimeOptions): Promise<NodeRuntime> {
    const reaped = await reapChildren(join(options.stateDir, "children.json"));
    const nc = await connectNats({
      servers: options.nats,
      name: `oneos-runtime-${options.name}`,
      credentials: options.credentialsFile === undefined ? undefined : await loadCredentials(options.credentialsFile),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    try {
      const buckets = await openClusterBuckets(nc, options.replicas === undefined ? {} : { replicas: options.replicas });
      const nodes = NodeTable.watch(buckets.nodes, nc);
      const directServer = await DirectServer.listen(options.dataHost ?? "127.0.0.1");
      // Mounted before the node's namespace is made, which binds it onto /proc; it learns the rest late.
      const late: { filesystem?: NodeFilesystem | undefined; runtime?: NodeRuntime } = {};
      const clusterProc = await mountClusterProc(options, nc, {
        realProc: () => late.filesystem?.realProc,
        localPids: () => (late.runtime === undefined ? [] : late.runtime.#procs.keys()),
        upNodes: () => nodes.upCount(Date.now()),
      });
      const filesystem = await startFilesystem(options, clusterProc?.mountpoint);
      if (filesystem === undefined) await clusterProc?.close();
      late.filesystem = filesystem;
      const runtime = new NodeRuntime(options, nc, buckets, nodes, ProcessTable.watch(buckets.procs), directServer, filesystem);
      late.runtime = runtime;
      if (filesystem !== undefined) runtime.#clusterProc = clusterProc;
      const replicas = options.replicas ?? 1;
      const [users] = await Promise.all([UserStore.open(nc, { replicas }), ensureAuditStream(nc, replicas)]);
      runtime.#auth = new AuthService({ nc, users, audit: runtime.#audit, logger: options.logger, makeHome: (user) => runtime.#makeHome(user) });
      // The node's /etc/passwd and /etc/group name the cluster's users for its processes.
      users.onChange = () => {
        void filesystem?.writeAccounts(users.list()).catch((error: unknown) => options.logger.warn({ err: String(error) }, "accounts not written"));
      };
      users.onChange();
      // A cluster that is still electing its stream leaders answers with time-outs: retry a while.
      const settle = { timeoutMs: START_TIMEOUT_MS };
      await retrying(() => runtime.#claimName(), { ...settle, what: "claim the node name" });
      await retrying(() => runtime.#markOwnLeftoversLost(), { ...settle, what: "mark leftover processes" });
      runtime.#serve();
      if (filesystem?.pidNamespace !== undefined) runtime.#startKillRelay(users);
      await retrying(() => runtime.#heartbeat(), { ...settle, what: "first heartbeat" });
      runtime.#timer = setInterval(() => void runtime.#tick(), HEARTBEAT_MS);
      await runtime.#startNetstack();
      runtime.#services = ServiceController.start({
        nc,
        node: options.name,
        nodes,
        procs: runtime.#procTable,
        logger: options.logger,
        session: () => runtime.#auth.rootSession(),
        ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
      });
      options.logger.info({ node: options.name, reaped }, "runtime ready");
      return runtime;
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  /** What the runtime running `pid` says of it now (one gather; undefined if none runs it). */
  async #liveRecord(pid: number): Promise<ProcessRecord | undefined> {
    const gathered = await gatherLiveProcesses(this.nc, {
      stallMs: RELAY_GATHER_STALL_MS,
      maxWaitMs: RELAY_GATHER_MAX_MS,
      enough: (records) => records.some((p) => p.pid === pid),
    });
    return gathered.find((p) => p.pid === pid);
  }

  /** kill(2) from this node's processes to processes on other nodes (see kill-relay.ts). */
  #startKillRelay(users: UserStore): void {
    KillRelay.start({
      nc: this.nc,
      node: this.name,
      // The node's PID namespace has it: its procfs, seen through the namespace holder's root (async:
      // under the cluster /proc, which this thread serves).
      isLocal: async (pid) => {
        const real = this.#filesystem?.realProc;
        return this.#procs.has(pid) || (real !== undefined && (await access(`${real}/${pid}`).then(() => true, () => false)));
      },
      find: async (pid) => {
        if (pid < FIRST_PID) return undefined; // never a cluster PID
        // A process started a moment ago is in the table once its first record is written (≈ 20 ms
        // on): until then its runtime knows it, and every runtime answers what it runs from memory.
        return this.#procTable.records.get(pid) ?? (await this.#liveRecord(pid));
      },
      userName: (uid) => users.list().find((u) => u.uid === uid)?.name,
      sessionForUid: (uid) => this.#auth.sessionForUid(uid),
    });
  }

  /** Only where the node has its own network namespace (root, CloudFS on): else nodes share one loopback. */
  async #startNetstack(): Promise<void> {
    const fs = this.#filesystem;
    const netNamespace = fs?.netNamespace;
    const namespacePid = fs?.holderPid;
    if (netNamespace === undefined || namespacePid === undefined) return;
    const peerLinks = this.#options.peerLinks !== false;
    if (!peerLinks) this.#log.info("netstack: peer links off; connections go over NATS");
    try {
      const netstack = await Netstack.start({
        peerLinks,
        nc: this.nc,
        node: this.name,
        transport: this.#transport,
        netNamespace,
        namespacePid,
        logger: this.#log,
        isNodeAlive: (node) => ["ready", "suspect"].includes(this.#nodes.state(node, Date.now())),
        isNodeLost: (node) => this.#nodes.records.has(node) && this.#nodes.state(node, Date.now()) === "down",
        oneosPid: (hostPid) => [...this.#procs.values()].find((s) => s.local.hostPid === hostPid)?.record.pid,
        ...(this.#options.replicas !== undefined ? { replicas: this.#options.replicas } : {}),
      });
      this.#netstack = netstack;
      // Runtimes with a netstack answer "which ports listen?" from its registry (queue group).
      this.#portsSubscription = this.nc.subscribe(CLUSTER_PORTS_SUBJECT, {
        queue: "oneos-ports",
        callback: guarded((msg) => replyTo(msg, { type: "ports", ports: netstack.ports })),
      });
    } catch (error) {
      this.#log.warn({ err: (error as Error).message }, "running without the netstack");
    }
  }

  /** Refuses to start under a name that a live runtime already heartbeats. */
  async #claimName(): Promise<void> {
    const entry = await this.#buckets.nodes.get(this.name);
    if (entry === null || entry.operation !== "PUT") return;
    try {
      const record = decode(entry.value) as NodeRecord;
      const fresh = Date.now() - record.heartbeat < DOWN_AFTER_MS && record.state === "ready";
      if (fresh && record.pid !== process.pid) {
        // Wait one heartbeat period: a runtime that just died leaves a fresh-looking record.
        await new Promise((r) => setTimeout(r, DOWN_AFTER_MS));
        const again = await this.#buckets.nodes.get(this.name);
        if (again !== null && again.revision !== entry.revision) {
          throw new KernelError("EINVAL", `node name ${this.name} is already in use by a live runtime`);
        }
      }
    } catch (error) {
      if (error instanceof KernelError) throw error;
    }
  }

  async #markOwnLeftoversLost(): Promise<void> {
    const records = await readAll(this.#buckets.procs, parseProcessRecord);
    await Promise.all(
      records
        .filter((r) => r.node === this.name && (r.state === "running" || r.state === "stopped"))
        .map((r) => this.#buckets.procs.put(String(r.pid), encode({ ...r, state: "lost", ended: Date.now() }))),
    );
  }

  #serve(): void {
    this.#subscription = this.nc.subscribe(`oneos.node.${this.name}.*`, {
      callback: (err, msg) => {
        if (err === null) void this.#handle(msg);
      },
    });
    this.#psSubscription = this.nc.subscribe(CLUSTER_PS_SUBJECT, {
      queue: "oneos-ps",
      callback: guarded((msg) => {
        const now = Date.now();
        const down = new Set(this.#nodes.view(now).filter((n) => n.effective === "down").map((n) => n.name));
        replyTo(msg, { type: "ps", procs: this.#procTable.list(down) });
      }),
    });
    // And every runtime answers with what it runs now, from memory.
    this.#psLiveSubscription = this.nc.subscribe(CLUSTER_PS_LIVE_SUBJECT, {
      callback: guarded((msg) => {
        replyTo(msg, { type: "ps", procs: [...[...this.#procs.values()].map((s) => s.record), ...this.#registered.list()] });
      }),
    });
    // Any one runtime answers "which nodes are alive?" from its table (queue group: one reply).
    this.#viewSubscription = this.nc.subscribe(CLUSTER_VIEW_SUBJECT, {
      queue: "oneos-view",
      callback: guarded((msg) => replyTo(msg, { type: "view", nodes: this.#nodes.view(Date.now()) })),
    });
  }

  async #handle(msg: Msg): Promise<void> {
    let reply: NodeReply;
    try {
      const request = parseNodeRequest(decode(msg.data));
      if (msg.subject !== nodeSubject(this.name, request.type)) {
        throw new KernelError("EBADMSG", `a ${request.type} request on ${msg.subject}`);
      }
      // Who asks is what the session token proves, never the request's own `user` field.
      const caller = request.type === "ping" ? undefined : await this.#auth.caller(msg);
      if ((request.type === "spawn" || request.type === "open") && !mayNotify(request.notify, caller!)) {
        // The runtime may publish anywhere: it must not publish where the caller could not.
        throw new KernelError("EPERM", `notify: ${request.notify.slice(0, 64)}: not a reply inbox`);
      }
      switch (request.type) {
        case "spawn":
          reply = await this.#spawnAdmitted(request, caller!);
          break;
        case "signal":
          reply = await this.#signal(request, caller!);
          break;
        case "ping":
          reply = { type: "pong", node: this.name, time: Date.now() };
          break;
        case "register":
          reply = { type: "registered", pid: await this.#registered.register(request, caller!.user) };
          break;
        case "fs":
          reply = await this.#files.fs(request, caller!);
          break;
        case "open":
          reply = await this.#files.open(request, caller!);
          break;
        case "attach":
        case "detach": {
          const supervised = this.#procs.get(request.pid);
          if (supervised === undefined || !(supervised.local instanceof PtyProcess)) {
            throw new KernelError("ESRCH", `(${request.pid}) - No such process on a terminal`);
          }
          mayControl(caller!, request.pid, supervised.record.user);
          if (request.type === "attach") {
            supervised.local.attach(
              new StreamReader(this.#transport, request.input),
              new StreamWriter(this.#transport, request.output),
              request.cols,
              request.rows,
            );
            reply = { type: "attached", pid: request.pid };
          } else {
            supervised.local.detach();
            reply = { type: "detached", pid: request.pid };
          }
          break;
        }
        case "tail": {
          // A process that ended a while ago keeps its last output as long as its record stays.
          const supervised = this.#procs.get(request.pid) ?? this.#ended.get(request.pid);
          if (supervised === undefined) throw new KernelError("ESRCH", `(${request.pid}) - No such process`);
          mayControl(caller!, request.pid, supervised.record.user);
          const { data, total } = supervised.local.tail.read();
          reply = { type: "output", pid: request.pid, data, total };
          break;
        }
        case "resize": {
          const supervised = this.#procs.get(request.pid);
          if (supervised === undefined) throw new KernelError("ESRCH", `(${request.pid}) - No such process`);
          mayControl(caller!, request.pid, supervised.record.user);
          supervised.local.resize(request.cols, request.rows);
          reply = { type: "resized", pid: request.pid };
          break;
        }
      }
    } catch (error) {
      if (!(error instanceof KernelError)) this.#log.warn({ err: error }, "request failed");
      reply = { type: "error", error: toWireError(error) };
    }
    replyTo(msg, reply);
  }

  /** Admission control around `#spawn`: the request's resources are held until the process exits. */
  async #spawnAdmitted(request: SpawnRequest, caller: Caller): Promise<NodeReply> {
    const release = this.#admission.admit(request.resources, this.name);
    try {
      const reply = await this.#spawn(request, caller);
      const supervised = reply.type === "spawned" ? this.#procs.get(reply.pid) : undefined;
      if (supervised === undefined) release();
      else void supervised.local.exited.then(release, release);
      return reply;
    } catch (error) {
      release();
      throw error;
    }
  }

  async #spawn(asked: SpawnRequest, caller: Caller): Promise<NodeReply> {
    if (this.#closing) throw new KernelError("ENONODE", `node ${this.name} is stopping`);
    // The process is the caller's: their uid and gid, their name in the environment.
    const request: SpawnRequest = { ...asked, env: { ...asked.env, USER: caller.user, LOGNAME: caller.user } };
    const who: FsIdentity = { uid: caller.uid, gid: caller.gid };
    const local =
      request.tty === undefined
        ? await LocalProcess.start(request, this.#transport, this.#pids, this.#view, who)
        : await PtyProcess.start(request, request.tty, this.#transport, await this.#pids.allocate(), this.#pids.block(), this.#view, who);
    const pid = local.pid;
    const record: ProcessRecord = {
      pid,
      ppid: request.ppid,
      node: this.name,
      hostPid: local.hostPid,
      user: caller.user,
      state: "running",
      argv: request.argv,
      cwd: request.cwd,
      started: Date.now(),
    };
    const supervised: Supervised = { local, record, writes: Promise.resolve() };
    if (local instanceof PtyProcess) {
      supervised.record = { ...record, terminal: "attached" };
      local.onTerminalChange = (terminal) => {
        if (supervised.record.terminal === terminal || this.#procs.get(pid) !== supervised) return;
        supervised.record = { ...supervised.record, terminal };
        this.#write(supervised);
      };
    }
    this.#procs.set(pid, supervised);
    this.#children.add(local.hostPid);
    setTimeout(() => {
      if (!this.#closing && this.#procs.get(pid) === supervised) this.#write(supervised);
    }, FIRST_RECORD_DELAY_MS).unref();
    void local.exited.then((exit) => this.#onExit(pid, exit, request.notify));
    this.#log.debug({ pid, argv: request.argv }, "spawned");
    this.#audit.write({ event: "spawn", user: caller.user, pid, argv: request.argv.slice(0, 64), cwd: request.cwd });
    return { type: "spawned", pid, node: this.name };
  }

  /** Queues a KV write of the record; writes of one process land in order. */
  #write(supervised: Supervised): void {
    const bytes = encode(supervised.record);
    const key = String(supervised.record.pid);
    supervised.writes = supervised.writes
      .then(() => this.#buckets.procs.put(key, bytes))
      .catch((error: unknown) => this.#log.warn({ err: error, pid: key }, "process record not written"));
  }

  #onExit(pid: number, exit: LocalExit, notify: string): void {
    const supervised = this.#procs.get(pid);
    if (supervised === undefined) return;
    this.#procs.delete(pid);
    this.#ended.set(pid, supervised);
    // Bounded: the last output of the most recent ones only (each keeps up to 64 KiB).
    if (this.#ended.size > MAX_ENDED_TAILS) this.#ended.delete(this.#ended.keys().next().value!);
    this.#children.delete(supervised.local.hostPid);
    supervised.record = {
      ...supervised.record,
      state: exit.signal !== null ? "killed" : "exited",
      ended: Date.now(),
      status: exit.status,
      ...(exit.signal !== null ? { signal: exit.signal } : {}),
    };
    this.#write(supervised);
    const event: ExitEvent = { type: "exit", pid, status: exit.status, ...(exit.signal !== null ? { signal: exit.signal } : {}) };
    try {
      this.nc.publish(notify, encode(event));
    } catch {
      // the caller falls back to the process table
    }
    const timer = setTimeout(() => {
      this.#purgeTimers.delete(timer);
      this.#ended.delete(pid);
      void this.#buckets.procs.delete(String(pid)).catch(() => undefined);
    }, ENDED_RECORD_TTL_MS);
    timer.unref();
    this.#purgeTimers.add(timer);
  }

  async #signal(request: SignalRequest, caller: Caller): Promise<NodeReply> {
    const signal = parseSignal(request.signal);
    const owner = this.#registered.owner(request.pid) ?? this.#procs.get(request.pid)?.record.user;
    if (owner === undefined) throw new KernelError("ESRCH", `(${request.pid}) - No such process`);
    this.#audit.write({ event: "kill", user: caller.user, pid: request.pid, signal, owner, ok: canControl(caller, owner) });
    mayControl(caller, request.pid, owner);
    if (this.#registered.signal(request.pid, signal)) return { type: "signalled", pid: request.pid };
    const supervised = this.#procs.get(request.pid);
    if (supervised === undefined) throw new KernelError("ESRCH", `(${request.pid}) - No such process`);
    supervised.local.signal(signal, request.only === true);
    const stops = signal === "SIGSTOP" || signal === "SIGTSTP" || signal === "SIGTTIN" || signal === "SIGTTOU";
    if (stops || signal === "SIGCONT") {
      supervised.record = { ...supervised.record, state: stops ? "stopped" : "running" };
      this.#write(supervised);
    }
    return { type: "signalled", pid: request.pid };
  }

  /** A new user's home in CloudFS: made here (as root), then given to them, mode 0700. */
  async #makeHome(user: { name: string; uid: number; gid: number; home: string }): Promise<void> {
    if (this.#filesystem === undefined) return;
    const local = this.#view.toLocal(user.home);
    const made = await mkdir(local, { mode: 0o700 }).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === "EEXIST") return false;
        throw error;
      },
    );
    if (made) await chown(local, user.uid, user.gid);
  }

  #nodeRecord(): NodeRecord {
    return {
      name: this.name,
      state: "ready",
      labels: this.#options.labels,
      nats: this.#options.nats,
      pid: process.pid,
      cpus: cpus().length,
      load: loadavg()[0] ?? 0,
      memTotal: totalmem(),
      memFree: freemem(),
      procs: this.#procs.size,
      mount: this.#filesystem?.mountpoint ?? null,
      heartbeat: Date.now(),
      started: this.started,
      allocatable: this.#admission.allocatable,
      reserved: this.#admission.reserved,
      busiest: this.#usage.busiest,
      data: { host: this.#directServer.host, port: this.#directServer.port },
      ...(this.#filesystem?.writeBack !== undefined ? { cloudfs: this.#filesystem.writeBack } : {}),
    };
  }

  /**
   * Core heartbeat first (liveness), then the durable record (may stall during a JetStream election).
   * The core heartbeat goes out every period whatever the KV does: a slow bucket must never make a
   * live node look silent.
   */
  async #heartbeat(): Promise<void> {
    const bytes = encode(this.#nodeRecord());
    this.nc.publish(heartbeatSubject(this.name), bytes);
    if (this.#putting) return; // the previous durable write is still in flight
    this.#putting = true;
    try {
      await this.#buckets.nodes.put(this.name, bytes);
    } finally {
      this.#putting = false;
    }
  }

  async #tick(): Promise<void> {
    if (this.#closing) return;
    this.#registered.sweep(Date.now());
    // The heartbeat first, never behind anything else (its `busiest` is the previous tick's sample).
    const beat = this.#heartbeat().catch((error: unknown) => this.#log.warn({ err: String(error) }, "heartbeat failed"));
    this.#restoreMarkedLost();
    // For the next heartbeat: what the node's CloudFS holds unstored (bounded; never waited for here).
    void this.#filesystem?.sampleWriteBack(this.nc).catch(() => undefined);
    // Per-process CPU and memory for the next heartbeat's `busiest` (oneos top): /proc reads, bounded.
    await this.#usage.sample(new Map([...this.#procs].map(([pid, s]) => [pid, s.local.hostPid]))).catch(() => undefined);
    if (!this.#ticking) {
      this.#ticking = true;
      // Independent of the heartbeat: a write stuck behind a stream leader election must not delay loss detection.
      await this.#watchPeers()
        .catch((error: unknown) => this.#log.warn({ err: String(error) }, "peer check failed"))
        .finally(() => (this.#ticking = false));
    }
    await beat;
  }

  /**
   * A peer that saw us silent (two busy cores, a JetStream election) may have marked us down and our
   * processes lost while they run on: their records are written again as they are.
   */
  #restoreMarkedLost(): void {
    let restored = 0;
    for (const [pid, supervised] of this.#procs) {
      if (this.#procTable.records.get(pid)?.state !== "lost") continue;
      this.#write(supervised);
      restored++;
    }
    if (restored > 0) this.#log.warn({ restored }, "marked lost by a peer while running: records restored");
  }

  /**
   * The leader (the lowest-named node that is alive) declares silent nodes down and their processes
   * lost. Silence is measured by our clock from the watcher, not by the peer's timestamps.
   */
  async #watchPeers(): Promise<void> {
    const now = Date.now();
    const alive = this.#nodes.ready(now);
    for (const name of alive) this.#markedDown.delete(name);
    const leader = alive[0];
    if (leader !== this.name) return;
    for (const record of this.#nodes.records.values()) {
      if (record.name === this.name || this.#markedDown.has(record.name)) continue;
      if (this.#nodes.state(record.name, now) !== "down") continue;
      this.#log.warn({ node: record.name }, "node lost");
      await Promise.all(
        [...this.#procTable.records.values()]
          .filter((p) => p.node === record.name && (p.state === "running" || p.state === "stopped"))
          .map((p) => this.#buckets.procs.put(String(p.pid), encode({ ...p, state: "lost", ended: now }))),
      );
      await this.#netstack?.forgetNode(record.name);
      await this.#buckets.nodes.put(record.name, encode({ ...record, state: "down" }));
      // Only once everything is written: a failed attempt is tried again at the next tick.
      this.#markedDown.add(record.name);
    }
  }

  /** Graceful stop: children get SIGHUP (then SIGKILL), the node record is removed, NATS drained. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#timer);
    await this.#services?.close();
    for (const t of this.#purgeTimers) clearTimeout(t);
    this.#subscription?.unsubscribe();
    this.#viewSubscription?.unsubscribe();
    this.#psSubscription?.unsubscribe();
    this.#psLiveSubscription?.unsubscribe();
    this.#portsSubscription?.unsubscribe();
    this.#procTable.stop();
    const running = [...this.#procs.values()];
    for (const s of running) {
      try {
        s.local.signal("SIGHUP");
      } catch {
        // already gone
      }
    }
    const grace = new Promise((r) => setTimeout(r, STOP_GRACE_MS).unref());
    await Promise.race([Promise.all(running.map((s) => s.local.exited)), grace]);
    for (const s of this.#procs.values()) {
      try {
        s.local.signal("SIGKILL");
      } catch {
        // already gone
      }
    }
    await Promise.race([Promise.all(running.map((s) => s.writes)), new Promise((r) => setTimeout(r, 1000).unref())]);
    await this.#registered.close();
    await this.#children.close();
    await this.#netstack?.close();
    await this.#directServer.close();
    await this.#filesystem?.close();
    await this.#clusterProc?.close();
    this.#nodes.stop();
    await this.#buckets.nodes.delete(this.name).catch(() => undefined);
    await this.nc.drain().catch(() => this.nc.close());
    this.#log.info({ node: this.name }, "runtime stopped");
  }
}

/** The cluster /proc (cluster-proc.ts) where the node gets namespaces (root, FUSE); else undefined. */
async function mountClusterProc(
  options: RuntimeOptions,
  nc: NatsConnection,
  late: Pick<ClusterProcOptions, "realProc" | "localPids" | "upNodes">,
): Promise<ClusterProc | undefined> {
  if ((options.cloudfs ?? "auto") === "off" || process.getuid?.() !== 0 || !existsSync("/dev/fuse")) return undefined;
  try {
    return await ClusterProc.mount({ nc, node: options.name, mountpoint: join(options.stateDir, "proc"), logger: options.logger, ...late });
  } catch (error) {
    options.logger.warn({ err: (error as Error).message }, "running without the cluster /proc: /proc is the node's own");
    return undefined;
  }
}

async function startFilesystem(options: RuntimeOptions, clusterProc: string | undefined): Promise<NodeFilesystem | undefined> {
  const mode = options.cloudfs ?? "auto";
  if (mode === "off") return undefined;
  try {
    return await NodeFilesystem.start({
      ...(clusterProc !== undefined ? { clusterProc } : {}),
      nats: options.nats,
      node: options.name,
      stateDir: options.stateDir,
      logger: options.logger,
      ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
      ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
      ...(options.credentialsFile !== undefined ? { credentialsFile: options.credentialsFile } : {}),
      // Peers read this node's cached blocks over direct links, where they make peer links at all.
      ...(options.peerLinks !== false ? { dataHost: options.dataHost ?? "127.0.0.1" } : {}),
    });
  } catch (error) {
    if (mode === "required") throw error;
    options.logger.warn({ err: (error as Error).message }, "running without CloudFS");
    return undefined;
  }
}
