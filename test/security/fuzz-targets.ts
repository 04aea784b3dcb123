import { headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import {
  AUTH_SUBJECTS,
  CLUSTER_PS_LIVE_SUBJECT,
  CLUSTER_PS_SUBJECT,
  CLUSTER_VIEW_SUBJECT,
  decode,
  encode,
  heartbeatSubject,
  newStreamId,
  nodeSubject,
  registeredSignalSubject,
  SESSION_HEADER,
  streamControlSubject,
  streamDataSubject,
} from "../../pseudokernel/index.js";
import { netstackConnectSubject } from "../../runtime/netstack/wire.js";
import { SERVICES_FORGET_SUBJECT, SERVICES_LIST_SUBJECT, serviceExitSubject } from "../../scheduler/index.js";
import { eventually } from "../harness/oneos-cluster.js";
import { HOSTILE_NUMBERS, HOSTILE_STRINGS, payload, Rng } from "./fuzz-payloads.js";

/**
 * What the fuzz test aims at — every subject a runtime or a shell listens on, with valid templates and
 * hostile-valued messages for each — and the flood itself, paced and counted.
 */

export const NODES = ["n1", "n2", "n3"] as const;
export const VERBS = ["spawn", "signal", "ping", "fs", "open", "resize", "attach", "detach", "register"] as const;
type Verb = (typeof VERBS)[number];

/** Requests in flight at once: enough to keep the runtimes busy, few enough to stay far from slow-consumer limits. */
const IN_FLIGHT = 128;
/** After this many payloads every runtime must answer a ping: nobody runs ahead of the slowest runtime. */
const BARRIER_EVERY = 3000;
/** A request with no answer within this is counted as unanswered (dropped). */
const REQUEST_TIMEOUT_MS = 1500;

/** Things in the cluster to aim hostile values at. */
export interface Aims {
  /** A directory the runtimes may write in: every write the fuzzer can produce stays inside it. */
  readonly scratch: string;
  /** Cluster pids of live processes (signals to them go as another user, or are harmless). */
  readonly pids: readonly number[];
  /** Cluster pids of live registered shells (their signal subjects). */
  readonly shellPids: readonly number[];
  /** Ids of streams the runtimes hold open now (changes as they are renewed). */
  readonly liveIds: string[];
  /** A port a server on some node listens on (netstack connect requests reach the owner's path). */
  readonly httpPort: number;
  /** A valid session token (root's, from `issue`), sent with kernel requests. */
  readonly session: string;
}

export type Mode = "request" | "publish" | "both";

export interface Target {
  /** The subject, or a function of the RNG for targets whose subject varies (unknown stream ids). */
  readonly subject: string | ((rng: Rng) => string);
  /** How it is counted in the figures. */
  readonly label: string;
  readonly mode: Mode;
  readonly templates: readonly Record<string, unknown>[];
  readonly hostile: (rng: Rng) => Record<string, unknown>;
  /**
   * Kernel requests carry a session token header: mostly the fuzzer's valid one (so payloads get past
   * the session check into the handlers), sometimes none or a forged one. Auth subjects never get the
   * valid root token: hostile `passwd`/`userdel` requests must not be able to succeed.
   */
  readonly session?: "kernel" | "forged";
}

export interface Counts {
  sent: number;
  requests: number;
  replies: number;
  errorReplies: number;
  noReply: number;
  noResponders: number;
  refused: number;
}

/** Paths to read (anything), and write paths that stay inside the scratch directory whatever `..` they hold. */
function paths(rng: Rng, forWrite: boolean, scratch: string): string {
  const base = scratch.split("/").pop()!;
  const writable = [
    `${scratch}/out`,
    `${scratch}/a/../out2`,
    `${scratch}/../${base}/out3`,
    `/tmp/../tmp/${base}/out4`,
    `${scratch}/\u202e\u0000x`,
    `${scratch}/${"n".repeat(300)}`,
    `${scratch}/nodir/x`,
  ];
  if (forWrite) return rng.pick(writable);
  return rng.pick([
    ...writable,
    "/etc/passwd",
    "/../../../etc/passwd",
    "/home/../../etc/passwd",
    "/home/root/../../../../etc/shadow",
    "/home/%2e%2e/%2e%2e/etc/passwd",
    "/proc/self/environ",
    "/dev/null",
    "/",
    "/home",
    "/nonexistent/\0/x",
    ...HOSTILE_STRINGS,
  ]);
}

function hostileString(rng: Rng): string {
  return rng.pick(HOSTILE_STRINGS);
}

function hostileNumber(rng: Rng): number {
  return rng.next() < 0.7 ? rng.pick(HOSTILE_NUMBERS) : rng.int(1_000_000);
}

/** Stdio for spawns: nothing dangerous is ever written, whatever the fuzzer picks. */
function stdio(rng: Rng, fd: number, scratch: string): Record<string, unknown> {
  switch (rng.int(5)) {
    case 0:
      return { kind: "file", path: paths(rng, false, scratch), mode: "r" };
    case 1:
      return { kind: "file", path: paths(rng, true, scratch), mode: rng.pick(["w", "a"]) };
    case 2:
      return { kind: "stream", id: rng.pick([newStreamId(), hostileString(rng)]) };
    case 3:
      return { kind: fd === 2 ? "stdout" : rng.pick(["stdout", "bogus"]) };
    default:
      return { kind: "null" };
  }
}

/** Valid messages per verb (from pseudokernel/messages.test.ts and the shell's own requests), harmless when obeyed. */
function verbTemplates(verb: Verb, { pids, scratch }: Aims): Record<string, unknown>[] {
  const pid = pids[0] ?? 1;
  switch (verb) {
    case "spawn":
      return [
        {
          type: "spawn", argv: ["true"], env: { PATH: "/usr/bin:/bin" }, cwd: "/", umask: 0o022, ppid: 1000,
          stdio: [{ kind: "null" }, { kind: "null" }, { kind: "stdout" }], notify: "_INBOX.fuzz.exit",
        },
        {
          type: "spawn", argv: ["cat", "/etc/hostname"], env: {}, cwd: "/tmp", umask: 0o077, ppid: 0,
          stdio: [{ kind: "null" }, { kind: "file", path: `${scratch}/cat-out`, mode: "w" }, { kind: "null" }], notify: "_INBOX.fuzz.exit",
          resources: { cpu: 0.1, mem: 1024 },
        },
      ];
    case "signal":
      // Not a live pid: mutations may turn the signal into any string, and the session is root's.
      return [{ type: "signal", pid: 999_999, signal: "SIGWINCH" }];
    case "ping":
      return [{ type: "ping" }];
    case "fs":
      return [{ type: "fs", op: "stat", path: "/etc/passwd" }, { type: "fs", op: "readdir", path: "/home" }];
    case "open":
      return [
        { type: "open", path: "/etc/hostname", mode: "r", stream: newStreamId(), notify: "_INBOX.fuzz.closed" },
        { type: "open", path: `${scratch}/open-out`, mode: "w", stream: newStreamId(), notify: "_INBOX.fuzz.closed" },
      ];
    case "resize":
      return [{ type: "resize", pid, cols: 80, rows: 24 }];
    case "attach":
      return [{ type: "attach", pid, input: newStreamId(), output: newStreamId(), cols: 80, rows: 24 }];
    case "detach":
      return [{ type: "detach", pid }];
    case "register":
      return [{ type: "register", argv: ["fuzz"] }, { type: "register", argv: ["fuzz"], pid, ended: 0 }];
  }
}

/** Valid-looking requests with hostile values. Signals to real pids go as another user (EPERM) or are harmless. */
function verbHostile(verb: Verb, { pids, scratch }: Aims): (rng: Rng) => Record<string, unknown> {
  const pid = (rng: Rng): number => (rng.next() < 0.4 && pids.length > 0 ? rng.pick(pids) : hostileNumber(rng));
  return (rng) => {
    switch (verb) {
      case "spawn":
        return {
          type: "spawn",
          argv: rng.pick([["true"], ["/bin/true"], ["../../bin/true"], [hostileString(rng)], ["true", hostileString(rng)], [], ["sleep", "0"]]),
          env: rng.pick([{ PATH: "/usr/bin:/bin" }, { [hostileString(rng)]: hostileString(rng) }, { PATH: "../../bin" }, {}]),
          cwd: rng.pick(["/", "../../", "/home/../..", "/tmp/\0", hostileString(rng)]),
          umask: hostileNumber(rng),
          // No request carries a user (the session decides): a claimed one must change nothing.
          user: hostileString(rng),
          ppid: hostileNumber(rng),
          stdio: [stdio(rng, 0, scratch), stdio(rng, 1, scratch), stdio(rng, 2, scratch)],
          notify: rng.pick(["_INBOX.fuzz", hostileString(rng)]),
          ...(rng.next() < 0.2 ? { tty: { term: hostileString(rng), cols: hostileNumber(rng), rows: hostileNumber(rng) } } : {}),
          ...(rng.next() < 0.2 ? { resources: { cpu: hostileNumber(rng), mem: hostileNumber(rng) } } : {}),
        };
      case "signal": {
        // The session is root's: a live process (the sleeper, the server, the shell) gets only
        // signals that do nothing to it; made-up pids get anything.
        const live = rng.next() < 0.4 && pids.length > 0;
        return {
          type: "signal",
          pid: live ? rng.pick(pids) : hostileNumber(rng),
          signal: rng.pick(["SIGWINCH", "0", "-9", "SIGNOPE", "99", "sigurg", ...(live ? [] : [hostileString(rng)])]),
          user: rng.pick(["nobody", "fuzz", hostileString(rng)]),
        };
      }
      case "ping":
        return { type: "ping", extra: hostileString(rng) };
      case "fs":
        return { type: "fs", op: rng.pick(["stat", "readdir", "mkdir", "unlink", hostileString(rng)]), path: paths(rng, true, scratch) };
      case "open":
        return {
          type: "open",
          path: paths(rng, false, scratch),
          mode: "r",
          stream: rng.pick([newStreamId(), hostileString(rng)]),
          notify: rng.pick(["_INBOX.fuzz", hostileString(rng)]),
        };
      case "resize":
        return { type: "resize", pid: pid(rng), cols: hostileNumber(rng), rows: hostileNumber(rng) };
      case "attach":
        return {
          type: "attach", pid: pid(rng), input: hostileString(rng), output: newStreamId(),
          cols: hostileNumber(rng), rows: hostileNumber(rng), user: rng.pick(["nobody", hostileString(rng)]),
        };
      case "detach":
        return { type: "detach", pid: pid(rng), user: rng.pick(["nobody", hostileString(rng)]) };
      case "register":
        return {
          type: "register",
          user: hostileString(rng),
          argv: rng.pick([[hostileString(rng)], Array.from({ length: 70 }, () => "a"), []]),
          ...(rng.next() < 0.5 ? { pid: pid(rng) } : {}),
          ...(rng.next() < 0.3 ? { ended: hostileNumber(rng) } : {}),
        };
    }
  };
}

/**
 * A heartbeat as a runtime sends it, stamped ten minutes ago: it is parsed in full but older than the
 * node's real ones. (A bit flip of a current stamp can land seconds ahead, and a node whose newest
 * beat is from the future is silent until then: the admin identity may do that, but then the flood
 * would test the leader's loss handling, not input handling.)
 */
function heartbeatTemplate(name: string): Record<string, unknown> {
  const stamp = Date.now() - 600_000;
  return {
    name, state: "ready", labels: {}, nats: "nats://127.0.0.1:4222", pid: 1, cpus: 2, load: 0.5, memTotal: 2 ** 31, memFree: 2 ** 30,
    procs: 0, mount: null, heartbeat: stamp, started: stamp, allocatable: { cpu: 2, mem: 2 ** 31 }, reserved: { cpu: 0, mem: 0 },
    busiest: [{ pid: 1, cpu: 1, rss: 1 }],
  };
}

function heartbeatHostile(rng: Rng): Record<string, unknown> {
  return {
    ...heartbeatTemplate(rng.pick(["n1", "n2", "n3", `fuzz-${rng.int(1_000_000)}`, hostileString(rng)])),
    state: rng.pick(["ready", "down", "leaving", "suspect", hostileString(rng)]),
    // Far-future stamps would freeze a node in the claimed state: the table must refuse them.
    heartbeat: rng.pick([Date.now() + 1e9, 2 ** 48, 8.64e15, hostileNumber(rng)]),
    labels: { [hostileString(rng)]: hostileString(rng) },
    busiest: Array.from({ length: rng.int(100) }, () => ({ pid: hostileNumber(rng), cpu: hostileNumber(rng), rss: hostileNumber(rng) })),
  };
}

/** Stream frames: the binary format of pseudokernel/stream/frame.ts, with hostile offsets, windows and offers. */
function frameHostile(rng: Rng): Uint8Array {
  const type = rng.int(7);
  const frame = Buffer.alloc(rng.pick([1, 7, 18, 19, 40, 300]));
  frame[0] = type;
  for (let i = 1; i < frame.length; i++) frame[i] = rng.next() < 0.5 ? 0xff : rng.int(256);
  if (type === 6 && frame.length >= 19) frame.writeUInt16BE(rng.pick([1, 9, 65535]), 1); // offer to a closed local port
  return frame;
}

export interface Figures {
  seed: number;
  payloads: number;
  requests: number;
  published: number;
  subjects: number;
  replies: number;
  errorReplies: number;
  noReply: number;
  noResponders: number;
  refusedByPermissions: number;
  nearMaxPayloads: number;
  wallMs: number;
  kinds: Record<string, number>;
  perSubject: Record<string, Counts>;
  rssBefore: Record<string, number>;
  rssAfter: Record<string, number>;
}

/** Every runtime answers a ping: everything sent before it has been handled (one connection, in order). */
export async function barrier(nc: NatsConnection): Promise<void> {
  await nc.flush();
  await Promise.all(
    NODES.map((n) =>
      eventually(async () => {
        try {
          const reply = decode((await nc.request(nodeSubject(n, "ping"), encode({ type: "ping" }), { timeout: 5000 })).data) as { type?: string };
          return reply.type === "pong" ? true : undefined;
        } catch {
          return undefined;
        }
      }, 30_000, `${n} to answer a ping during the flood`),
    ),
  );
}

/** Floods `targets` with `total` payloads from one connection; counts what came back. */
/** The session header for one payload, per the target's `session` rule (undefined: no header). */
function sessionHeader(rng: Rng, target: Target, session: string): MsgHdrs | undefined {
  if (target.session === undefined) return undefined;
  const roll = rng.int(10);
  if (roll === 0) return undefined;
  const valid = target.session === "kernel" && roll < 8;
  const forged = rng.pick([
    "",
    "x",
    session.slice(0, rng.int(session.length)),
    session.replace(/[A-Za-z]/, (c) => (c === "A" ? "B" : "A")),
    `${session}x`,
    "a".repeat(60_000),
    Buffer.from(rng.bytes(48)).toString("base64"),
    "root",
    "..%2f..%2f",
  ]);
  const h = headers();
  h.set(SESSION_HEADER, valid ? session : forged);
  return h;
}

export async function flood(nc: NatsConnection, targets: readonly Target[], total: number, rng: Rng, figures: Figures, who: string, session: string): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < total; i++) {
    const target = targets[i % targets.length]!;
    const subject = typeof target.subject === "string" ? target.subject : target.subject(rng);
    const { kind, bytes } = target.label.startsWith("stream")
      ? rng.next() < 0.5
        ? { kind: "frame", bytes: frameHostile(rng) }
        : payload(rng, [], () => ({}))
      : payload(rng, target.templates, target.hostile);
    const label = `${who} ${target.label}`;
    const counts = (figures.perSubject[label] ??= { sent: 0, requests: 0, replies: 0, errorReplies: 0, noReply: 0, noResponders: 0, refused: 0 });
    counts.sent++;
    figures.payloads++;
    figures.kinds[kind] = (figures.kinds[kind] ?? 0) + 1;
    const asRequest = target.mode === "request" || (target.mode === "both" && rng.next() < 0.5);
    const h = sessionHeader(rng, target, session);
    if (!asRequest) {
      figures.published++;
      try {
        nc.publish(subject, bytes, h === undefined ? undefined : { headers: h });
      } catch {
        counts.refused++; // an invalid subject (a hostile id): refused by the client before it is sent
      }
    } else {
      figures.requests++;
      counts.requests++;
      const p = nc.request(subject, bytes, { timeout: REQUEST_TIMEOUT_MS, ...(h === undefined ? {} : { headers: h }) }).then(
        (msg) => {
          counts.replies++;
          figures.replies++;
          let reply: unknown;
          try {
            reply = decode(msg.data);
          } catch {
            return;
          }
          const type = (reply as { type?: unknown } | null)?.type;
          if (type === "error" || type === "refused") {
            counts.errorReplies++;
            figures.errorReplies++;
          }
        },
        (error: unknown) => {
          const text = String(error);
          if (/no responders|503/i.test(text)) {
            counts.noResponders++;
            figures.noResponders++;
          } else if (/permission/i.test(text)) {
            counts.refused++;
            figures.refusedByPermissions++;
          } else {
            counts.noReply++;
            figures.noReply++;
          }
        },
      );
      const tracked = p.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    }
    if (i % BARRIER_EVERY === BARRIER_EVERY - 1) await barrier(nc);
  }
  await Promise.all(inFlight);
  await barrier(nc);
}

/**
 * Real auth requests (pseudokernel/auth-messages.ts). They go without a valid session, so the ones
 * that change users are refused; logins name a user that does not exist (no scrypt work, no lock-out of root).
 */
const AUTH_TEMPLATES: readonly Record<string, unknown>[] = [
  { type: "login", user: "eve", password: "x" },
  { type: "refresh" },
  { type: "issue", user: "eve", ttlMs: 1000 },
  { type: "useradd", name: "eve", password: "pw" },
  { type: "userdel", name: "root" },
  { type: "passwd", name: "root", password: "x", old: "y" },
  { type: "users" },
];

/** One target per subject a runtime or a shell listens on. */
export function buildTargets(aims: Aims): Target[] {
  const targets: Target[] = [];
  for (const node of NODES) {
    for (const verb of VERBS) {
      targets.push({ subject: nodeSubject(node, verb), label: `node.${verb}`, mode: "both", templates: verbTemplates(verb, aims), hostile: verbHostile(verb, aims), session: "kernel" });
    }
    // A verb nobody defined arrives on the same wildcard subscription.
    targets.push({ subject: `oneos.node.${node}.bogus`, label: "node.bogus", mode: "both", templates: verbTemplates("ping", aims), hostile: verbHostile("spawn", aims), session: "kernel" });
    targets.push({ subject: heartbeatSubject(node), label: "heartbeat", mode: "publish", templates: [heartbeatTemplate(node)], hostile: heartbeatHostile });
    targets.push({
      subject: netstackConnectSubject(node),
      label: "netstack.connect",
      mode: "request",
      templates: [{ type: "connect", port: aims.httpPort, toOwner: newStreamId(), toCaller: newStreamId() }],
      hostile: (rng) => ({
        type: "connect",
        port: rng.pick([aims.httpPort, 22, 4222, 1, 65535, hostileNumber(rng)]),
        toOwner: rng.pick([newStreamId(), hostileString(rng)]),
        toCaller: rng.pick([newStreamId(), hostileString(rng)]),
        // The client's first bytes: absent, plausible, over the 64 KiB bound, or not bytes at all.
        data: rng.pick([undefined, Buffer.from("GET / HTTP/1.0\r\n\r\n"), Buffer.alloc(70_000, 1), hostileString(rng)]),
      }),
    });
  }
  targets.push({ subject: (rng) => heartbeatSubject(`fuzz-${rng.int(1_000_000)}`), label: "heartbeat.unknown", mode: "publish", templates: [heartbeatTemplate("fuzz-1")], hostile: heartbeatHostile });
  for (const subject of [CLUSTER_VIEW_SUBJECT, CLUSTER_PS_SUBJECT, CLUSTER_PS_LIVE_SUBJECT]) {
    targets.push({ subject, label: subject.replace("oneos.", ""), mode: "both", templates: [{ type: "view" }, { type: "ps" }], hostile: (rng) => ({ type: hostileString(rng) }) });
  }
  const signalTemplates = [{ type: "signal", signal: "SIGWINCH" }, { type: "signal", signal: "SIGUSR1" }];
  // Only signals a shell acts on (HUP, KILL, TERM, INT) would end it; those are never sent to the live one.
  const harmlessSignal = (rng: Rng): Record<string, unknown> => ({ type: "signal", signal: rng.pick(["SIGWINCH", "SIGCONT", "0", hostileString(rng)]) });
  for (const pid of aims.shellPids) {
    targets.push({ subject: registeredSignalSubject(pid), label: "registered.signal(live)", mode: "publish", templates: signalTemplates, hostile: harmlessSignal });
  }
  targets.push({ subject: (rng) => registeredSignalSubject(rng.int(100_000)), label: "registered.signal(any)", mode: "publish", templates: signalTemplates, hostile: harmlessSignal });
  targets.push({ subject: (rng) => streamDataSubject(rng.pick(aims.liveIds)), label: "stream.w(live)", mode: "publish", templates: [], hostile: () => ({}) });
  targets.push({ subject: (rng) => streamControlSubject(rng.pick(aims.liveIds)), label: "stream.r(live)", mode: "publish", templates: [], hostile: () => ({}) });
  targets.push({ subject: () => streamDataSubject(newStreamId()), label: "stream.w(unknown)", mode: "publish", templates: [], hostile: () => ({}) });
  targets.push({ subject: () => streamControlSubject(newStreamId()), label: "stream.r(unknown)", mode: "publish", templates: [], hostile: () => ({}) });
  for (const subject of Object.values(AUTH_SUBJECTS)) {
    targets.push({
      subject,
      label: subject.replace("oneos.", ""),
      mode: "request",
      templates: AUTH_TEMPLATES,
      hostile: (rng) => ({
        type: rng.pick(["login", "refresh", "issue", "useradd", "userdel", "passwd", "users", hostileString(rng)]),
        user: rng.pick(["eve", hostileString(rng)]),
        name: rng.pick(["eve", hostileString(rng)]),
        password: hostileString(rng),
        old: hostileString(rng),
        ttlMs: hostileNumber(rng),
      }),
      session: "forged",
    });
  }
  targets.push({ subject: SERVICES_LIST_SUBJECT, label: "services.list", mode: "request", templates: [{ type: "list" }], hostile: (rng) => ({ type: hostileString(rng) }) });
  targets.push({ subject: SERVICES_FORGET_SUBJECT, label: "services.forget", mode: "publish", templates: [{ name: "fuzz" }], hostile: (rng) => ({ name: rng.int(2) === 0 ? hostileString(rng) : hostileNumber(rng) }) });
  targets.push({
    subject: (rng) => serviceExitSubject(rng.pick(["fuzz", "web", "x"])),
    label: "services.exit",
    mode: "publish",
    templates: [{ type: "exit", pid: 1, status: 0 }],
    hostile: (rng) => ({ type: "exit", pid: hostileNumber(rng), status: hostileNumber(rng), signal: hostileString(rng) }),
  });
  return targets;
}

export function newFigures(seed: number): Figures {
  return {
    seed, payloads: 0, requests: 0, published: 0, subjects: 0, replies: 0, errorReplies: 0, noReply: 0, noResponders: 0,
    refusedByPermissions: 0, nearMaxPayloads: 0, wallMs: 0, kinds: {}, perSubject: {}, rssBefore: {}, rssAfter: {},
  };
}

/** A root session from the auth service's `issue` (the admin identity may ask for one). */
export async function rootSession(nc: NatsConnection): Promise<string> {
  const reply = decode((await nc.request(AUTH_SUBJECTS.issue, encode({ type: "issue", user: "root" }), { timeout: 10_000 })).data) as { token?: unknown };
  if (typeof reply.token !== "string") throw new Error(`no session from issue: ${JSON.stringify(reply)}`);
  return reply.token;
}

/** Options for a kernel request carrying `session`. */
export function withSession(session: string): { headers: MsgHdrs } {
  const h = headers();
  h.set(SESSION_HEADER, session);
  return { headers: h };
}
