import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planNatsCluster } from "../../cluster/nats-cluster-plan.js";
import { startNatsServer, waitForPort, type NatsServerSpec } from "../../cluster/nats-server.js";

/** A real NATS cluster (JetStream on) for one test file; `close()` kills every server and removes its data. */
export interface TestNatsCluster {
  readonly urls: readonly string[];
  readonly specs: readonly NatsServerSpec[];
  readonly dir: string;
  /** Hard-kills server `i` (SIGKILL), as a machine loss would. */
  kill(i: number): Promise<void>;
  /** Starts server `i` again with its old store. */
  restart(i: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTestNatsCluster(size = 3): Promise<TestNatsCluster> {
  const dir = await mkdtemp(join(tmpdir(), "oneos-nats-"));
  const names = Array.from({ length: size }, (_, i) => `s${i + 1}`);
  const specs = await planNatsCluster(dir, names);
  const children: (ChildProcess | undefined)[] = [];
  for (const spec of specs) children.push(await startNatsServer(spec));
  await Promise.all(specs.map((s) => waitForPort(s.clientPort)));
  const killOne = async (i: number): Promise<void> => {
    const child = children[i];
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    children[i] = undefined;
  };
  return {
    urls: specs.map((s) => `nats://127.0.0.1:${s.clientPort}`),
    specs,
    dir,
    kill: killOne,
    async restart(i) {
      const spec = specs[i];
      if (spec === undefined) throw new Error(`no server ${i}`);
      await killOne(i);
      children[i] = await startNatsServer(spec);
      await waitForPort(spec.clientPort);
    },
    async close() {
      await Promise.all(children.map((_, i) => killOne(i)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
