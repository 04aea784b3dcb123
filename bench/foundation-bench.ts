import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import { LocalCluster } from "../cluster/index.js";
import { KernelClient, loadCredentials } from "../pseudokernel/index.js";
import { ClusterExecutor, runShell } from "../shell/index.js";
import { startLoopbackSshd } from "./lib/loopback-sshd.js";
import { MB, median, percentile, renderTable, sampleRss, timeShell } from "./lib/measure.js";

const exec = promisify(execFile);
const CLI = fileURLToPath(new URL("../cli/oneos.cjs", import.meta.url));
/** The CLI's modules without the bundle (what the runtimes run): the bundle's gain, side by side. */
const CLI_MODULES = fileURLToPath(new URL("../cli/main.js", import.meta.url));
/** Whole CLI processes timed per verb (#15's "a CLI in kubectl time": ≤ 200 ms, median of 20). */
const CLI_RUNS = 20;

export interface FoundationBenchOptions {
  /** Bytes pushed through each pipe (default 2 GiB). */
  readonly bytes?: number;
  /** Runs of each throughput row; the median is reported. */
  readonly runs?: number;
  /** Remote spawns timed for the latency row. */
  readonly spawns?: number;
}

/**
 * Issue #2's benchmark: cross-node pipe throughput next to a local pipe and an ssh pipe on loopback,
 * remote spawn latency next to ssh's, and the runtimes' peak RSS while the pipe runs. All measured in
 * this run, on this machine. Returns the table as printed.
 */
export async function runFoundationBench(options: FoundationBenchOptions = {}): Promise<string> {
  const bytes = options.bytes ?? 2 * 1024 ** 3;
  const runs = options.runs ?? 3;
  const spawns = options.spawns ?? 200;
  const mib = Math.round(bytes / 1024 ** 2);
  const dd = `dd if=/dev/zero bs=1M count=${mib} status=none`;
  // As the issue has it: `cat` on the receiving side.
  const sink = "cat >/dev/null";
  const home = await mkdtemp(join(tmpdir(), "oneos-bench-"));
  const cluster = new LocalCluster(home);
  const sshd = await startLoopbackSshd();
  const rows: string[][] = [];
  const notes: string[] = [];
  try {
    await cluster.up({ nodes: 3 });
    const url = (await cluster.anyUrl())!;
    // As the shell identity, the one `oneos shell` uses (TLS and its permission checks included).
    const kernel = await KernelClient.connect(url, { name: "oneos-bench", credentials: await loadCredentials(cluster.credentialsFile("shell")) });
    // A root session, issued through the admin identity as for `oneos shell` on the owner's machine.
    kernel.session = await KernelClient.issueSession((await cluster.anyUrl())!, await loadCredentials(cluster.credentialsFile("admin")), "root");
    const executor = await ClusterExecutor.create(kernel);
    const shell = async (command: string): Promise<number> => {
      const started = performance.now();
      const status = await runShell({
        executor,
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: "/root" },
        cwd: "/tmp",
        home: "/root",
        user: userInfo().username,
        command,
        interactive: false,
        stdin: Readable.from([]),
        stdout: new Writable({ write: (_c, _e, cb) => cb() }),
        stderr: process.stderr,
      });
      if (status !== 0) throw new Error(`${command}: status ${status}`);
      return performance.now() - started;
    };
    const mbps = (ms: number): string => `${(bytes / MB / (ms / 1000)).toFixed(0)} MB/s`;

    // 1. Throughput: the three paths take turns, so a noisy minute on this shared machine does not
    // fall on one of them.
    const local: number[] = [];
    const remote: number[] = [];
    const ssh: number[] = [];
    const runtimes = (await cluster.status()).map((n) => n.pid ?? 0);
    const sampler = sampleRss(runtimes);
    for (let i = 0; i < runs; i++) {
      local.push(await timeShell(`${dd} | ${sink}`));
      remote.push(await shell(`@n1 ${dd} | @n2 ${sink}`));
      if (!("skipped" in sshd)) ssh.push(await timeShell(`${dd} | ssh ${sshd.sshArgs.join(" ")} '${sink}'`));
    }
    const peaks = sampler.stop();
    rows.push([`local pipe (dd | cat, ${mib} MiB)`, mbps(median(local)), "1.00×"]);
    rows.push([`oneos n1 → n2 pipe`, mbps(median(remote)), `${(median(local) / median(remote)).toFixed(2)}× of local`]);
    let sshMs: number | undefined;
    if ("skipped" in sshd) {
      notes.push(`ssh rows skipped: ${sshd.skipped}`);
    } else {
      sshMs = median(ssh);
      rows.push([`ssh pipe on loopback`, mbps(sshMs), `oneos = ${(sshMs / median(remote)).toFixed(2)}× ssh`]);
    }

    // 2. Remote spawn latency.
    for (let i = 0; i < 10; i++) await shell("@n2 true"); // warm-up
    const latencies: number[] = [];
    for (let i = 0; i < spawns; i++) latencies.push(await shell("@n2 true"));
    rows.push([
      `oneos \`@n2 true\` (${spawns} runs)`,
      `p50 ${percentile(latencies, 50).toFixed(1)} ms`,
      `p99 ${percentile(latencies, 99).toFixed(1)} ms`,
    ]);
    if (!("skipped" in sshd)) {
      const sshTrue: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        await exec("ssh", [...sshd.sshArgs, "true"]);
        sshTrue.push(performance.now() - started);
      }
      rows.push([`ssh remote \`true\`, new connection (10 runs)`, `p50 ${median(sshTrue).toFixed(1)} ms`, `p99 ${percentile(sshTrue, 99).toFixed(1)} ms`]);
    }

    // 3. The CLI as a user runs it: a whole process per call, against this cluster, next to bare node.
    // Through the user's agent (cli/agent.ts: the first call starts it), and each in a process of its
    // own (ONEOS_NO_AGENT=1: connects, takes a session and loads the CLI itself).
    const timeProcess = async (args: readonly string[], env: Record<string, string> = {}): Promise<number> => {
      const started = performance.now();
      await exec(process.execPath, args, { env: { ...process.env, ONEOS_HOME: home, ...env } });
      return performance.now() - started;
    };
    const cliRow = async (label: string, args: readonly string[], env: Record<string, string> = {}): Promise<void> => {
      await timeProcess(args, env); // warm-up: the file cache, and the verb's code cache (written by its first run)
      const ms: number[] = [];
      for (let i = 0; i < CLI_RUNS; i++) ms.push(await timeProcess(args, env));
      rows.push([label, `p50 ${median(ms).toFixed(0)} ms`, `p99 ${percentile(ms, 99).toFixed(0)} ms`]);
    };
    const own = { ONEOS_NO_AGENT: "1" };
    await cliRow(`node -e 0 (reference, ${CLI_RUNS} runs)`, ["-e", "0"]);
    await timeProcess([CLI, "ps"]);
    const agentUp = Date.now();
    while (!existsSync(join(home, "agent.sock")) && Date.now() - agentUp < 10_000) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(join(home, "agent.sock"))) notes.push("the agent did not start: the rows 'through the agent' ran in their own processes");
    await cliRow(`oneos ps, through the agent (${CLI_RUNS} runs)`, [CLI, "ps"]);
    await cliRow(`oneos nodes, through the agent (${CLI_RUNS} runs)`, [CLI, "nodes"]);
    await cliRow(`oneos shell -c '@n2 true', through the agent (${CLI_RUNS} runs)`, [CLI, "shell", "-c", "@n2 true"]);
    await cliRow(`oneos ps, own process (${CLI_RUNS} runs)`, [CLI, "ps"], own);
    await cliRow(`oneos nodes, own process (${CLI_RUNS} runs)`, [CLI, "nodes"], own);
    await cliRow(`oneos shell -c '@n2 true', own process (${CLI_RUNS} runs)`, [CLI, "shell", "-c", "@n2 true"], own);
    await cliRow(`oneos ps from main.js, no bundle (${CLI_RUNS} runs)`, [CLI_MODULES, "ps"], own);

    // 4. `ps -ef` on a node with 300 processes spread over the cluster (its /proc shows them all), next
    // to the host's `ps -ef` with as many of its own: ms per run, from a shell loop on each side.
    const oneosEnv = { ...process.env, ONEOS_HOME: home, ONEOS_NO_AGENT: "1" };
    const psLoop = "s=$(date +%s%N); for i in 1 2 3 4 5 6 7 8 9 10; do ps -ef > /dev/null; done; e=$(date +%s%N); echo $(( (e - s) / 10000 )) $(ps -ef | wc -l)";
    const spread = spawn(process.execPath, [CLI, "shell", "-c", "for i in $(seq 100); do @n1 sleep 900 & @n2 sleep 900 & @n3 sleep 900 & done; wait"], { env: oneosEnv, stdio: "ignore" });
    const hostSleeps = Array.from({ length: 300 }, () => spawn("sleep", ["900"], { stdio: "ignore" }));
    try {
      const started = Date.now();
      let count = 0;
      while (count < 300 && Date.now() - started < 120_000) {
        const { stdout } = await exec(process.execPath, [CLI, "ps", "--json"], { env: oneosEnv, maxBuffer: 64 * 2 ** 20 });
        count = (JSON.parse(stdout) as { command: string }[]).filter((p) => p.command === "sleep 900").length;
        if (count < 300) await new Promise((r) => setTimeout(r, 500));
      }
      const onNode = (await exec(process.execPath, [CLI, "shell", "-c", `@n2 sh -c '${psLoop}'`], { env: oneosEnv })).stdout.trim().split(/\s+/).map(Number);
      const onHost = (await exec("sh", ["-c", psLoop])).stdout.trim().split(/\s+/).map(Number);
      const [nodeUs = 0, nodeLines = 0] = onNode;
      const [hostUs = 0, hostLines = 0] = onHost;
      rows.push([`ps -ef on n2, ${count} sleeps over 3 nodes (10 runs)`, `${(nodeUs / 1000).toFixed(1)} ms a run, ${nodeLines - 1} rows`, `${(nodeUs / hostUs).toFixed(2)}× the host's`]);
      rows.push([`ps -ef on the host, 300 sleeps of its own (10 runs)`, `${(hostUs / 1000).toFixed(1)} ms a run, ${hostLines - 1} rows`, "reference"]);
    } finally {
      for (const p of hostSleeps) p.kill("SIGKILL");
      spread.kill("SIGKILL");
    }

    // 5. Memory.
    rows.push([
      "runtime peak RSS during the oneos pipe",
      peaks.map((p, i) => `n${i + 1} ${(p / 2 ** 20).toFixed(0)} MiB`).join(", "),
      "",
    ]);
    executor.close();
    await kernel.close();
  } finally {
    await cluster.down({ purge: true }).catch(() => undefined);
    if (!("skipped" in sshd)) await sshd.close();
    await rm(home, { recursive: true, force: true });
  }
  const table = renderTable(["foundation (issue 2)", "figure", "ratio / note"], rows);
  return [table, ...notes.map((n) => `note: ${n}`)].join("\n");
}
