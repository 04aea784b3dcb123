import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { AUDIT_STREAM, auditSubject, KernelError } from "../../pseudokernel/index.js";

/** One line of the audit log. `event` says what; the rest depends on it. */
export interface AuditEvent {
  readonly event: "login" | "login-failed" | "spawn" | "kill" | "useradd" | "userdel" | "passwd";
  /** Who did it (the session's user; for a failed login, the name tried). */
  readonly user: string;
  readonly [detail: string]: unknown;
}

/** The audit log keeps this long. */
const MAX_AGE_MS = 90 * 24 * 3600_000;

/** Creates the audit stream (idempotent; several runtimes start at once). */
export async function ensureAuditStream(nc: NatsConnection, replicas: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: 5000 });
      const config = {
        name: AUDIT_STREAM,
        subjects: [auditSubject(">")],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: replicas,
        max_age: MAX_AGE_MS * 1_000_000,
      };
      try {
        await jsm.streams.info(AUDIT_STREAM);
      } catch {
        await jsm.streams.add(config);
      }
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new KernelError("EIO", `audit stream: ${(error as Error).message}`, { cause: error });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Writes audit events as JSON lines into the cluster (the audit stream keeps what is published on
 * `oneos.audit.<node>`). Core NATS publishes: an event never waits on a JetStream election.
 */
export class AuditLog {
  #nc: NatsConnection;
  #subject: string;
  #node: string;

  constructor(nc: NatsConnection, node: string) {
    this.#nc = nc;
    this.#node = node;
    this.#subject = auditSubject(node);
  }

  write(event: AuditEvent): void {
    try {
      this.#nc.publish(this.#subject, JSON.stringify({ time: new Date().toISOString(), node: this.#node, ...event }));
    } catch {
      // the connection is closing
    }
  }
}
