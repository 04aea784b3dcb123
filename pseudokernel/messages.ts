import { isErrorCode, type WireError } from "./errors.js";
import { NODE_NAME_PATTERN, NODE_VERBS } from "./subjects.js";
import { bad, int, obj, oneOf, optInt, optStr, str, strArray, strRecord, type Obj } from "./validate.js";

/**
 * The kernel API's wire messages: discriminated unions on `type`, msgpack-encoded, validated here at
 * the edge (`parse*`) so handlers work with typed values only.
 */

/** Where one of a process's standard fds goes, as the runtime must set it up. */
export type StdioSpec =
  | { readonly kind: "null" }
  /** A node-local path opened by the runtime (CloudFS paths are node-local paths too). */
  | { readonly kind: "file"; readonly path: string; readonly mode: "r" | "w" | "a" }
  /** A stream: `reader` for stdin (bytes flow to the process), `writer` for stdout/stderr. */
  | { readonly kind: "stream"; readonly id: string }
  /** stderr only: the same destination as stdout (`2>&1`). */
  | { readonly kind: "stdout" };

export interface SpawnRequest {
  readonly type: "spawn";
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly umask: number;
  readonly ppid: number;
  readonly stdio: readonly [StdioSpec, StdioSpec, StdioSpec];
  /** Subject on which the runtime publishes the `ExitEvent`. */
  readonly notify: string;
  /** CPU (cores) and memory (bytes) the node reserves for the process until it ends (admission control). */
  readonly resources?: ResourceAmounts;
  /**
   * Run it on a pseudo-terminal of this size: stdio[0] is then the keystroke stream, stdio[1] the
   * terminal's output stream, stdio[2] is ignored (the PTY carries it).
   */
  readonly tty?: TtySpec;
}

export interface TtySpec {
  readonly term: string;
  readonly cols: number;
  readonly rows: number;
}

/** A window-size change for a process running on a pseudo-terminal (it gets SIGWINCH). */
export interface ResizeRequest {
  readonly type: "resize";
  readonly pid: number;
  readonly cols: number;
  readonly rows: number;
}

/** CPU in cores (fractions allowed) and memory in bytes. */
export interface ResourceAmounts {
  readonly cpu: number;
  readonly mem: number;
}

/** One of a node's busiest processes, as its heartbeat reports them (for `oneos top`). */
export interface ProcessUsage {
  readonly pid: number;
  /** CPU use over the last sample period, in percent of one core. */
  readonly cpu: number;
  /** Resident set size in bytes. */
  readonly rss: number;
}

export interface SignalRequest {
  readonly type: "signal";
  readonly pid: number;
  readonly signal: string;
  /** The process alone, as kill(2) of its PID does (a relayed kill); else its whole process group, as the kill builtin does. */
  readonly only?: boolean;
}

export interface PingRequest {
  readonly type: "ping";
}

/** A file-system question about a path as the node's processes see it (the shell's cd, globbing). */
export interface FsRequest {
  readonly type: "fs";
  readonly op: "stat" | "readdir" | "mkdir";
  readonly path: string;
}

/**
 * Opens a file on the node and connects it to a stream: `r` → the node writes the file into stream
 * `stream`; `w`/`a` → the node writes what arrives on `stream` into the file, then publishes a
 * `FileClosed` event on `notify` once the file is closed (close-to-open: the writer waits for it).
 */
export interface OpenRequest {
  readonly type: "open";
  readonly path: string;
  readonly mode: "r" | "w" | "a";
  readonly stream: string;
  readonly notify: string;
}

export interface FileClosed {
  readonly type: "closed";
  readonly error?: WireError;
}

/**
 * Connects a client to a process running on a pseudo-terminal (`oneos attach`): its keystrokes on
 * `input`, the terminal's recent output (the last screenful or so) and then its live output on
 * `output`. A client attached before is let go (its output stream ends), as `tmux attach -d` does.
 */
export interface AttachRequest {
  readonly type: "attach";
  readonly pid: number;
  readonly input: string;
  readonly output: string;
  readonly cols: number;
  readonly rows: number;
}

/** Lets go of a process's terminal without hanging it up: it runs on, detached, until re-attached. */
export interface DetachRequest {
  readonly type: "detach";
  readonly pid: number;
}

/**
 * A process that is not a child of a runtime — a shell, a desktop session — joins the process table:
 * it gets a cluster PID (its children's PPID) on the node it talks to, keeps it alive by registering
 * again with its `pid` at least every LEASE period, and gets signals sent to it on `shellSignalSubject`.
 * With `ended`, it leaves the table with that status.
 */
export interface RegisterRequest {
  readonly type: "register";
  readonly argv: readonly string[];
  readonly pid?: number;
  readonly ended?: number;
}

/** The last output of a process (its stdout and stderr as they went to streams, or its terminal's). */
export interface TailRequest {
  readonly type: "tail";
  readonly pid: number;
}

export type NodeRequest =
  | TailRequest
  | RegisterRequest
  | SpawnRequest
  | SignalRequest
  | PingRequest
  | FsRequest
  | OpenRequest
  | ResizeRequest
  | AttachRequest
  | DetachRequest;

export type NodeReply =
  | { readonly type: "spawned"; readonly pid: number; readonly node: string }
  | { readonly type: "signalled"; readonly pid: number }
  | { readonly type: "resized"; readonly pid: number }
  | { readonly type: "registered"; readonly pid: number }
  | { readonly type: "attached"; readonly pid: number }
  | { readonly type: "detached"; readonly pid: number }
  | { readonly type: "pong"; readonly node: string; readonly time: number }
  | { readonly type: "stat"; readonly exists: boolean; readonly isDirectory: boolean; readonly size: number; readonly mode: number }
  | { readonly type: "entries"; readonly names: readonly string[] }
  | { readonly type: "done" }
  /** `data`: the last bytes (at most 64 KiB); `total`: how many the process wrote in all. */
  | { readonly type: "output"; readonly pid: number; readonly data: Uint8Array; readonly total: number }
  | { readonly type: "error"; readonly error: WireError };

export interface ExitEvent {
  readonly type: "exit";
  readonly pid: number;
  /** `$?`: exit code, or 128 + signal number. */
  readonly status: number;
  readonly signal?: string;
}

export type ProcessState = "running" | "stopped" | "exited" | "killed" | "lost";

/** One row of the cluster's process table (KV bucket `oneos_procs`, key = pid). */
export interface ProcessRecord {
  readonly pid: number;
  readonly ppid: number;
  readonly node: string;
  /** OS pid on the node. */
  readonly hostPid: number;
  readonly user: string;
  readonly state: ProcessState;
  readonly argv: readonly string[];
  readonly cwd: string;
  /** ms since the epoch. */
  readonly started: number;
  readonly ended?: number;
  readonly status?: number;
  readonly signal?: string;
  /** For a process on a pseudo-terminal: whether a client is attached to it now (`oneos sessions`). */
  readonly terminal?: "attached" | "detached";
}

export type NodeState = "ready" | "suspect" | "down" | "leaving";

/** One node's heartbeat (KV bucket `oneos_nodes`, key = node name). */
export interface NodeRecord {
  readonly name: string;
  readonly state: NodeState;
  readonly labels: Readonly<Record<string, string>>;
  readonly nats: string;
  /** OS pid of the runtime. */
  readonly pid: number;
  readonly cpus: number;
  /** 1-minute load average. */
  readonly load: number;
  readonly memTotal: number;
  readonly memFree: number;
  /** Processes this runtime supervises now. */
  readonly procs: number;
  /** CloudFS mount path on the node, once mounted. */
  readonly mount: string | null;
  /** ms since the epoch, by the node's clock. */
  readonly heartbeat: number;
  readonly started: number;
  /** What the node may hand out to resource requests, and what its running processes hold now. */
  readonly allocatable?: ResourceAmounts;
  readonly reserved?: ResourceAmounts;
  /** The node's busiest processes, most CPU first. */
  readonly busiest?: readonly ProcessUsage[];
  /** Where the runtime takes direct stream links: writers go direct only to such an endpoint. */
  readonly data?: { readonly host: string; readonly port: number };
  /** The node's CloudFS write-back, as its file system daemon last said (absent: no CloudFS, or no answer). */
  readonly cloudfs?: CloudFsWriteBackFigures;
}

/** What a node's CloudFS holds that JetStream has not stored yet. */
export interface CloudFsWriteBackFigures {
  /** File data written on the node and not yet stored. */
  readonly dirtyBytes: number;
  /** Age of the oldest change not yet stored (0: none). */
  readonly oldestDirtyAgeMs: number;
  /** Metadata changes not yet stored. */
  readonly pendingOps: number;
}

function parseTty(value: unknown): TtySpec {
  const o = obj(value, "tty");
  const term = str(o, "term", { max: 64 });
  if (!/^[A-Za-z0-9._+-]*$/.test(term)) bad("tty.term: bad characters");
  return { term, cols: int(o, "cols", 1, 10_000), rows: int(o, "rows", 1, 10_000) };
}

function streamId(id: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) bad("stream id: bad characters");
  return id;
}

/** Where an event goes: "" (nowhere) or a NATS subject without wildcards or empty tokens. */
function notifySubject(o: Obj): string {
  const subject = str(o, "notify", { max: 256 });
  if (subject !== "" && (!/^[A-Za-z0-9_.$-]+$/.test(subject) || subject.split(".").includes(""))) bad("notify: not a subject");
  return subject;
}

function absolutePath(o: Obj): string {
  const path = str(o, "path");
  if (!path.startsWith("/") || path.includes("\0")) bad("path: expected an absolute path");
  return path;
}

function parseStdio(value: unknown, fd: number): StdioSpec {
  const o = obj(value, `stdio[${fd}]`);
  const kind = oneOf(o, "kind", ["null", "file", "stream", "stdout"] as const);
  switch (kind) {
    case "null":
      return { kind };
    case "file":
      return { kind, path: str(o, "path"), mode: oneOf(o, "mode", ["r", "w", "a"] as const) };
    case "stream":
      return { kind, id: streamId(str(o, "id", { max: 64 })) };
    case "stdout":
      if (fd !== 2) bad("stdio: only stderr can follow stdout");
      return { kind };
  }
}

export function parseNodeRequest(value: unknown): NodeRequest {
  const o: Obj = obj(value, "request");
  const type = oneOf(o, "type", NODE_VERBS);
  switch (type) {
    case "tail":
      return { type, pid: int(o, "pid", 1) };
    case "register": {
      const pid = optInt(o, "pid", 1);
      const ended = optInt(o, "ended", 0, 255);
      return {
        type,
        argv: strArray(o, "argv", 64, 4096),
        ...(pid !== undefined ? { pid } : {}),
        ...(ended !== undefined ? { ended } : {}),
      };
    }
    case "attach":
      return {
        type,
        pid: int(o, "pid", 1),
        input: streamId(str(o, "input", { max: 64 })),
        output: streamId(str(o, "output", { max: 64 })),
        cols: int(o, "cols", 1, 10_000),
        rows: int(o, "rows", 1, 10_000),
      };
    case "detach":
      return { type, pid: int(o, "pid", 1) };
    case "resize":
      return { type, pid: int(o, "pid", 1), cols: int(o, "cols", 1, 10_000), rows: int(o, "rows", 1, 10_000) };
    case "fs":
      return { type, op: oneOf(o, "op", ["stat", "readdir", "mkdir"] as const), path: absolutePath(o) };
    case "open":
      return {
        type,
        path: absolutePath(o),
        mode: oneOf(o, "mode", ["r", "w", "a"] as const),
        stream: streamId(str(o, "stream", { max: 64 })),
        notify: notifySubject(o),
      };
    case "spawn": {
      const argv = strArray(o, "argv");
      if (argv.length === 0 || argv[0] === "") bad("argv: empty");
      const env = strRecord(o, "env");
      const cwd = str(o, "cwd");
      // exec(2) takes C strings: a NUL cannot be passed on (Node would throw deep inside spawn).
      const strings = [...argv, ...Object.keys(env), ...Object.values(env), cwd];
      if (strings.some((s) => s.includes("\0"))) bad("argv, env and cwd: NUL byte");
      const stdio = o["stdio"];
      if (!Array.isArray(stdio) || stdio.length !== 3) bad("stdio: expected 3 entries");
      return {
        type,
        argv,
        env,
        cwd,
        umask: int(o, "umask", 0, 0o777),
        ppid: int(o, "ppid"),
        ...optResources(o, "resources"),
        stdio: [parseStdio(stdio[0], 0), parseStdio(stdio[1], 1), parseStdio(stdio[2], 2)],
        notify: notifySubject(o),
        ...(o["tty"] === undefined || o["tty"] === null ? {} : { tty: parseTty(o["tty"]) }),
      };
    }
    case "signal": {
      const only = o["only"];
      if (only !== undefined && typeof only !== "boolean") bad("signal: only must be a boolean");
      return { type, pid: int(o, "pid", 1), signal: str(o, "signal", { max: 16 }), ...(only === true ? { only } : {}) };
    }
    case "ping":
      return { type };
  }
}

export function parseNodeReply(value: unknown): NodeReply {
  const o = obj(value, "reply");
  const type = oneOf(o, "type", ["spawned", "signalled", "resized", "attached", "detached", "registered", "pong", "error", "stat", "entries", "done", "output"] as const);
  switch (type) {
    case "output": {
      const data = o["data"];
      if (!(data instanceof Uint8Array) || data.length > 1024 * 1024) bad("data: expected bytes");
      return { type, pid: int(o, "pid", 1), data, total: int(o, "total") };
    }
    case "registered":
      return { type, pid: int(o, "pid", 1) };
    case "attached":
    case "detached":
      return { type, pid: int(o, "pid", 1) };
    case "resized":
      return { type, pid: int(o, "pid", 1) };
    case "stat":
      return {
        type,
        exists: o["exists"] === true,
        isDirectory: o["isDirectory"] === true,
        size: int(o, "size"),
        mode: int(o, "mode"),
      };
    case "entries":
      return { type, names: strArray(o, "names", 1_000_000, 4096) };
    case "done":
      return { type };
    case "spawned":
      return { type, pid: int(o, "pid", 1), node: str(o, "node", { max: 64 }) };
    case "signalled":
      return { type, pid: int(o, "pid", 1) };
    case "pong":
      return { type, node: str(o, "node", { max: 64 }), time: int(o, "time") };
    case "error":
      return { type, error: parseWireError(o["error"]) };
  }
}

export function parseExitEvent(value: unknown): ExitEvent {
  const o = obj(value, "exit");
  oneOf(o, "type", ["exit"] as const);
  const signal = optStr(o, "signal", 16);
  return { type: "exit", pid: int(o, "pid", 1), status: int(o, "status", 0, 255), ...(signal ? { signal } : {}) };
}

export function parseProcessRecord(value: unknown): ProcessRecord {
  const o = obj(value, "process");
  const ended = optInt(o, "ended");
  const status = optInt(o, "status", 0, 255);
  const signal = optStr(o, "signal", 16);
  const terminal = o["terminal"] === undefined || o["terminal"] === null ? undefined : oneOf(o, "terminal", ["attached", "detached"] as const);
  return {
    ...(terminal !== undefined ? { terminal } : {}),
    pid: int(o, "pid", 1),
    ppid: int(o, "ppid"),
    node: str(o, "node", { max: 64 }),
    hostPid: int(o, "hostPid"),
    user: str(o, "user", { max: 64 }),
    state: oneOf(o, "state", ["running", "stopped", "exited", "killed", "lost"] as const),
    argv: strArray(o, "argv"),
    cwd: str(o, "cwd"),
    started: int(o, "started"),
    ...(ended !== undefined ? { ended } : {}),
    ...(status !== undefined ? { status } : {}),
    ...(signal !== undefined ? { signal } : {}),
  };
}

export function parseNodeRecord(value: unknown): NodeRecord {
  const o = obj(value, "node");
  const name = str(o, "name", { max: 64 });
  if (!NODE_NAME_PATTERN.test(name)) bad("name: bad node name");
  const mount = o["mount"] === null || o["mount"] === undefined ? null : str(o, "mount");
  const num = (key: string): number => {
    const v = o[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) bad(`${key}: expected a number`);
    return v;
  };
  return {
    name,
    state: oneOf(o, "state", ["ready", "suspect", "down", "leaving"] as const),
    labels: strRecord(o, "labels", 256),
    nats: str(o, "nats", { max: 512 }),
    pid: int(o, "pid"),
    cpus: int(o, "cpus"),
    load: num("load"),
    memTotal: num("memTotal"),
    memFree: num("memFree"),
    procs: int(o, "procs"),
    mount,
    heartbeat: int(o, "heartbeat"),
    started: int(o, "started"),
    ...optResources(o, "allocatable"),
    ...optResources(o, "reserved"),
    ...optBusiest(o),
    ...(o["data"] === undefined || o["data"] === null ? {} : { data: parseEndpoint(o["data"]) }),
    ...(o["cloudfs"] === undefined || o["cloudfs"] === null ? {} : { cloudfs: parseWriteBackFigures(o["cloudfs"]) }),
  };
}

export function parseWriteBackFigures(value: unknown): CloudFsWriteBackFigures {
  const o = obj(value, "cloudfs");
  const num = (key: string): number => {
    const v = o[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) bad(`cloudfs.${key}: expected a count`);
    return v;
  };
  return { dirtyBytes: num("dirtyBytes"), oldestDirtyAgeMs: num("oldestDirtyAgeMs"), pendingOps: num("pendingOps") };
}

function parseEndpoint(value: unknown): { host: string; port: number } {
  const o = obj(value, "data");
  return { host: str(o, "host", { max: 256 }), port: int(o, "port", 1, 65535) };
}

/** `{ [key]: amounts }` when the optional field is there, `{}` when not (older senders). */
function optResources<K extends string>(o: Obj, key: K): { [P in K]?: ResourceAmounts } {
  if (o[key] === undefined || o[key] === null) return {};
  const r = obj(o[key], key);
  const amount = (k: string): number => {
    const v = r[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) bad(`${key}.${k}: expected a number`);
    return v;
  };
  return { [key]: { cpu: amount("cpu"), mem: amount("mem") } } as { [P in K]?: ResourceAmounts };
}

function optBusiest(o: Obj): { busiest?: ProcessUsage[] } {
  const list = o["busiest"];
  if (list === undefined || list === null) return {};
  if (!Array.isArray(list) || list.length > 64) bad("busiest: expected an array");
  return {
    busiest: list.map((item) => {
      const u = obj(item, "busiest[]");
      const cpu = u["cpu"];
      if (typeof cpu !== "number" || !Number.isFinite(cpu) || cpu < 0) bad("busiest.cpu: expected a number");
      return { pid: int(u, "pid", 1), cpu, rss: int(u, "rss") };
    }),
  };
}

/** The reply to a cluster-view request: every node a runtime knows, with the state it judges. */
export function parseClusterView(value: unknown): (NodeRecord & { readonly effective: NodeState })[] {
  const o = obj(value, "view");
  oneOf(o, "type", ["view"] as const);
  const nodes = o["nodes"];
  if (!Array.isArray(nodes) || nodes.length > 10_000) bad("nodes: expected an array");
  return nodes.map((n) => {
    const record = parseNodeRecord(n);
    const effective = oneOf(obj(n, "node"), "effective", ["ready", "suspect", "down", "leaving"] as const);
    return { ...record, effective };
  });
}

/** The reply to a cluster-ps request: the process table as one runtime mirrors it. */
export function parseClusterPs(value: unknown): ProcessRecord[] {
  const o = obj(value, "ps");
  oneOf(o, "type", ["ps"] as const);
  const procs = o["procs"];
  if (!Array.isArray(procs) || procs.length > 100_000) bad("procs: expected an array");
  return procs.map(parseProcessRecord);
}

export function parseFileClosed(value: unknown): FileClosed {
  const o = obj(value, "closed");
  oneOf(o, "type", ["closed"] as const);
  if (o["error"] === undefined || o["error"] === null) return { type: "closed" };
  return { type: "closed", error: parseWireError(o["error"]) };
}

/** An error as it crossed the wire; an unknown code becomes EIO, never a crash. */
export function parseWireError(value: unknown): WireError {
  const e = obj(value, "error");
  const code = e["code"];
  return { name: "KernelError", code: isErrorCode(code) ? code : "EIO", message: str(e, "message") };
}
