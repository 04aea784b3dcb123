import { RequestError, type NatsConnection } from "@nats-io/transport-node";
import { MAX_OPENED_QUESTION, openedSubject } from "./peer-service.js";

/** How long a node has to say which files it has open; one that did not is asked again next round. */
const ANSWER_TIMEOUT_MS = 1_000;
/** How often inodes another node still has open, or that a node did not answer for, are asked for again. */
const RETRY_MS = 2_000;
/** New orphans are gathered this long into one question (an `rm -rf` makes thousands). */
const GATHER_MS = 5;

export interface OrphanReaperOptions {
  readonly nc: NatsConnection;
  readonly nodeId: string;
  /** The nodes whose CloudFS runs now (fresh liveness records); this node is left out of the question. */
  readonly nodes: () => readonly string[];
  /** Whether a process of this node has the inode open. */
  readonly openHere: (ino: number) => boolean;
  /**
   * Deletes those of the inodes that still have no link and are not open here, with their blocks
   * (under their home leases, taken once for all of a directory's); resolves with those it could not.
   */
  readonly destroy: (inodes: readonly number[]) => Promise<number[]>;
  /** Marks inodes another node has open as this node's orphans (nlink 0, `orphanOf`), once. */
  readonly keep: (inodes: readonly number[]) => Promise<void>;
}

/**
 * Files whose last name is gone, deleted once no node has them open: an open file outlives its name,
 * on every node as on one machine (POSIX; NFS's silly rename covers only the client that unlinks,
 * CephFS's capabilities cover all of them). The node that dropped the last link, and any node that
 * closes such a file, asks every node whose CloudFS runs which of them it still has open, and deletes
 * the rest; the others it asks about again every `RETRY_MS`, and so does a node at its own last close.
 * A node that does not answer keeps the question open until it answers or its liveness record
 * expires (a lost node's processes are gone). The inode records `orphanOf` this node meanwhile, so a
 * restart asks again (core.ts); an orphan of a node that never comes back stays, unreadable, until
 * someone removes it (known gap).
 */
export class OrphanReaper {
  readonly #options: OrphanReaperOptions;
  /** Inode → when to ask about it (next). */
  readonly #due = new Map<number, number>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #round: Promise<void> | undefined;
  #closed = false;

  constructor(options: OrphanReaperOptions) {
    this.#options = options;
  }

  /** An inode whose last link is gone and that this node no longer has open. */
  add(ino: number): void {
    this.#due.set(ino, Date.now());
    this.#schedule(GATHER_MS);
  }

  /** Resolves once the question under way (or due now) is answered and acted on: syncfs waits for it. */
  async settled(): Promise<void> {
    if (this.#timer !== undefined && this.#timerAt <= Date.now() + GATHER_MS) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#startRound();
    }
    await this.#round;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #schedule(delayMs: number): void {
    if (this.#closed || this.#round !== undefined) return;
    const at = Date.now() + delayMs;
    if (at >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#startRound();
    }, delayMs);
  }

  #startRound(): void {
    if (this.#round !== undefined || this.#closed) return;
    this.#round = this.#ask().finally(() => {
      this.#round = undefined;
      let next = Infinity;
      for (const at of this.#due.values()) next = Math.min(next, at);
      if (Number.isFinite(next)) this.#schedule(Math.max(0, next - Date.now()));
    });
  }

  async #ask(): Promise<void> {
    const now = Date.now();
    const { nc, nodeId, nodes, openHere, destroy, keep: mark } = this.#options;
    const due = [...this.#due].filter(([, at]) => at <= now).map(([ino]) => ino).slice(0, MAX_OPENED_QUESTION);
    // Open here again: this node's last close adds it once more.
    const asked = due.filter((ino) => {
      if (!openHere(ino)) return true;
      this.#due.delete(ino);
      return false;
    });
    if (asked.length === 0) return;
    const keep = new Set<number>();
    let unanswered = false;
    await Promise.all(
      nodes()
        .filter((node) => node !== nodeId)
        .map(async (node) => {
          try {
            const reply = await nc.request(openedSubject(node), JSON.stringify({ inodes: asked }), { timeout: ANSWER_TIMEOUT_MS });
            const answer = JSON.parse(new TextDecoder().decode(reply.data)) as { ok?: boolean; open?: unknown };
            if (answer.ok !== true || !Array.isArray(answer.open)) throw new Error("malformed answer");
            for (const ino of answer.open) if (typeof ino === "number") keep.add(ino);
          } catch (error) {
            // Nobody listens there: no mount, so no open file. Any other failure: ask again.
            if (!(error instanceof RequestError && error.isNoResponders())) unanswered = true;
          }
        }),
    );
    const later = Date.now() + RETRY_MS;
    const unused = asked.filter((ino) => !unanswered && !keep.has(ino));
    for (const ino of asked) this.#due.set(ino, later);
    const held = asked.filter((ino) => keep.has(ino));
    if (held.length > 0) await mark(held).catch(() => {});
    const failed = await destroy(unused).catch(() => unused);
    for (const ino of unused) if (!failed.includes(ino)) this.#due.delete(ino);
  }
}
