import { KernelError, type SpawnRequest } from "../pseudokernel/index.js";

type Amounts = NonNullable<SpawnRequest["resources"]>;

/** Amounts are compared with this slack so that 0.1 + 0.2 cores fit in 0.3. */
const EPSILON = 1e-9;

/**
 * Admission control: the node's own ledger of CPU and memory reserved by running processes. Every
 * spawn with a resource request passes `admit` before the process starts and gives its share back
 * when it ends. `admit` is synchronous, so two requests arriving at once are decided one after the
 * other on the event loop: however many shells place at the same moment, the node never promises
 * more than it has. A refusal is `EPLACE`, and the shell places the command again elsewhere.
 *
 * @example
 * const release = admission.admit({ cpu: 1, mem: 0 }, "sleep");
 * child.on("exit", release);
 */
export class Admission {
  readonly allocatable: Amounts;
  #reserved: Amounts = { cpu: 0, mem: 0 };

  constructor(allocatable: Amounts) {
    this.allocatable = allocatable;
  }

  get reserved(): Amounts {
    return this.#reserved;
  }

  /** Reserves `request` or throws `EPLACE`; the returned function releases it (once, however often called). */
  admit(request: Amounts | undefined, node: string): () => void {
    if (request === undefined || (request.cpu === 0 && request.mem === 0)) return () => undefined;
    const free = { cpu: this.allocatable.cpu - this.#reserved.cpu, mem: this.allocatable.mem - this.#reserved.mem };
    if (request.cpu > free.cpu + EPSILON || request.mem > free.mem + EPSILON) {
      throw new KernelError(
        "EPLACE",
        `node ${node}: resources: asked cpu=${request.cpu},mem=${request.mem}; free cpu=${round(free.cpu)},mem=${Math.max(0, free.mem)}`,
      );
    }
    this.#reserved = { cpu: this.#reserved.cpu + request.cpu, mem: this.#reserved.mem + request.mem };
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#reserved = {
        cpu: Math.max(0, round(this.#reserved.cpu - request.cpu)),
        mem: Math.max(0, this.#reserved.mem - request.mem),
      };
    };
  }
}

function round(cores: number): number {
  return Math.round(cores * 1e6) / 1e6;
}
