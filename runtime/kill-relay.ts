import { constants } from "node:os";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { decode, encode, nodeSubject, parseNodeReply, parseSignal, SESSION_HEADER, type ProcessRecord } from "../pseudokernel/index.js";
import { addon } from "./native-addon.js";

const EPERM = constants.errno.EPERM;
const ESRCH = constants.errno.ESRCH;
const EINVAL = constants.errno.EINVAL;
/** How long a relayed kill waits for the other node; then ESRCH, as for a process that is gone. */
const RELAY_TIMEOUT_MS = 5000;

/** The name of a signal number the kill builtin knows (parseSignal's table), or undefined. */
function signalName(signal: number): string | undefined {
  try {
    return parseSignal(String(signal));
  } catch {
    return undefined;
  }
}

export interface KillRelayOptions {
  readonly nc: NatsConnection;
  readonly node: string;
  /** A process of this node (its PID namespace has it, or the runtime runs it). */
  isLocal(pid: number): Promise<boolean>;
  /** Where a cluster PID runs, from the process table or the runtimes themselves; undefined if nowhere. */
  find(pid: number): Promise<ProcessRecord | undefined>;
  /** The cluster user with this uid (root is 0), if any. */
  userName(uid: number): string | undefined;
  /** A short session for the cluster user with this uid (undefined: not a cluster user). */
  sessionForUid(uid: number): Promise<string | undefined>;
}

/**
 * kill(2) across nodes, the runtime's half (the kernel's is kill-relay.c): each kill(2) one of this
 * node's processes makes to a PID that may be a cluster PID comes here. A PID of this node, or one the
 * cluster does not know, goes back to the kernel untouched: its answers (ESRCH, EPERM, the signal)
 * are exact. A PID on another node is signalled there with a session of the caller's user, so that
 * node checks the permission and audits it as for the `kill` builtin, and its answer is the caller's.
 * The addon has one handler: one runtime per process.
 */
export class KillRelay {
  readonly #o: KillRelayOptions;

  private constructor(options: KillRelayOptions) {
    this.#o = options;
  }

  static start(options: KillRelayOptions): KillRelay {
    const relay = new KillRelay(options);
    addon.onKill((watch, id, _callerPid, ruid, euid, pid, signal) => {
      void relay.#answer(pid, signal, ruid, euid).then(
        (errno) => addon.killReply(watch, id, errno ?? 0, errno === undefined),
        () => addon.killReply(watch, id, ESRCH, false),
      );
    });
    return relay;
  }

  /** The errno the caller gets (0: signalled), or undefined: the kernel's own kill(2). */
  async #answer(pid: number, signal: number, ruid: number, euid: number): Promise<number | undefined> {
    if (await this.#o.isLocal(pid)) return undefined;
    const record = await this.#o.find(pid);
    if (record === undefined || record.node === this.#o.node || (record.state !== "running" && record.state !== "stopped")) return undefined;
    const name = signal === 0 ? undefined : signalName(signal);
    if (signal !== 0 && name === undefined) return EINVAL;
    // The kernel lets root (effective) signal any process, others theirs (real or effective uid).
    const uid = euid === 0 || this.#o.userName(euid) === record.user ? euid : ruid;
    if (uid !== 0 && this.#o.userName(uid) !== record.user) return EPERM;
    // Signal 0 asks only whether it exists and may be signalled: the table answers that.
    if (name === undefined) return 0;
    const session = await this.#o.sessionForUid(uid);
    if (session === undefined) return EPERM;
    const h = headers();
    h.set(SESSION_HEADER, session);
    try {
      const msg = await this.#o.nc.request(nodeSubject(record.node, "signal"), encode({ type: "signal", pid, signal: name, only: true }), { timeout: RELAY_TIMEOUT_MS, headers: h });
      const reply = parseNodeReply(decode(msg.data));
      if (reply.type !== "error") return 0;
      return reply.error.code === "EPERM" ? EPERM : ESRCH;
    } catch {
      return ESRCH;
    }
  }
}
