import type { KV } from "@nats-io/kv";
import {
  encode,
  KernelError,
  parseSignal,
  registeredSignalSubject,
  type ProcessRecord,
  type RegisterRequest,
} from "../pseudokernel/index.js";

/** A registered process that has not renewed for this long is gone (its shell died without a word). */
export const REGISTRATION_LEASE_MS = 10_000;

interface Registration {
  record: ProcessRecord;
  renewed: number;
  writes: Promise<unknown>;
}

/**
 * Processes of the cluster that are not children of a runtime — shells, desktop sessions — listed in
 * the process table on the node they talk to, so `$$` is a cluster PID, their children show a real
 * PPID, and `kill` reaches them (as an event they act on). Each holds a lease it renews.
 */
export class RegisteredProcesses {
  #entries = new Map<number, Registration>();
  #node: string;
  #procs: KV;
  #allocate: () => Promise<number>;
  #publish: (subject: string, data: Uint8Array) => void;

  constructor(options: { node: string; procs: KV; allocate: () => Promise<number>; publish: (subject: string, data: Uint8Array) => void }) {
    this.#node = options.node;
    this.#procs = options.procs;
    this.#allocate = options.allocate;
    this.#publish = options.publish;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The records of every registered process now. */
  list(): ProcessRecord[] {
    return [...this.#entries.values()].map((e) => e.record);
  }

  /** New registration, renewal (with `pid`), or leaving (with `ended`), by `user` (the session's). Returns the PID. */
  async register(request: RegisterRequest, user: string): Promise<number> {
    if (request.pid === undefined) {
      const pid = await this.#allocate();
      const entry: Registration = {
        record: { pid, ppid: 0, node: this.#node, hostPid: 0, user, state: "running", argv: request.argv, cwd: "/", started: Date.now() },
        renewed: Date.now(),
        writes: Promise.resolve(),
      };
      this.#entries.set(pid, entry);
      this.#write(entry);
      return pid;
    }
    const entry = this.#entries.get(request.pid);
    if (entry === undefined || entry.record.user !== user) {
      throw new KernelError("ESRCH", `(${request.pid}) - not registered here`);
    }
    if (request.ended !== undefined) {
      this.#end(request.pid, entry, request.ended);
    } else {
      entry.renewed = Date.now();
    }
    return request.pid;
  }

  /** The user a registered process belongs to, or undefined when the PID is not one of ours. */
  owner(pid: number): string | undefined {
    return this.#entries.get(pid)?.record.user;
  }

  /** Delivers a signal to a registered process (the caller has checked who may); false when the PID is not one of ours. */
  signal(pid: number, signal: string): boolean {
    if (!this.#entries.has(pid)) return false;
    this.#publish(registeredSignalSubject(pid), encode({ type: "signal", signal: parseSignal(signal) }));
    return true;
  }

  /** Ends registrations whose lease ran out. */
  sweep(now: number): void {
    for (const [pid, entry] of this.#entries) {
      if (now - entry.renewed > REGISTRATION_LEASE_MS) this.#end(pid, entry, 129); // as if hung up
    }
  }

  #end(pid: number, entry: Registration, status: number): void {
    this.#entries.delete(pid);
    entry.record = { ...entry.record, state: "exited", status, ended: Date.now() };
    this.#write(entry);
    const timer = setTimeout(() => void this.#procs.delete(String(pid)).catch(() => undefined), 60_000);
    timer.unref();
  }

  #write(entry: Registration): void {
    const bytes = encode(entry.record);
    const key = String(entry.record.pid);
    entry.writes = entry.writes.then(() => this.#procs.put(key, bytes)).catch(() => undefined);
  }

  /** The node is stopping: every registration ends (its holders will find another node). */
  async close(): Promise<void> {
    const entries = [...this.#entries.entries()];
    for (const [pid, entry] of entries) this.#end(pid, entry, 129);
    await Promise.race([Promise.all(entries.map(([, e]) => e.writes)), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
