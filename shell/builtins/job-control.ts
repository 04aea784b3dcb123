import { constants as osConstants } from "node:os";
import type { Job } from "../jobs.js";
import { fail, print, type Builtin, type BuiltinCall } from "./builtin.js";

/** `jobs [-l|-p]`. */
export const jobsBuiltin: Builtin = async (call) => {
  const flag = call.argv[1];
  const table = call.shell.jobs;
  for (const job of table.list()) {
    if (flag === "-p") await print(call.stdout, `${job.pids.join("\n")}\n`);
    else await print(call.stdout, `${table.describe(job, { withPid: flag === "-l" })}\n`);
    if (job.state === "Done") job.reported = true;
  }
  if (flag !== "-p") for (const job of [...table.list()]) if (job.state === "Done") table.remove(job);
  return 0;
};

function resolveJob(call: BuiltinCall, spec: string | undefined): Job | undefined {
  const table = call.shell.jobs;
  if (spec === undefined) return table.find("%+");
  if (spec.startsWith("%")) return table.find(spec);
  if (/^\d+$/.test(spec)) return table.findByPid(Number(spec));
  return undefined;
}

/** `wait [%n|pid]...`: without arguments waits for every job and returns 0. */
export const waitBuiltin: Builtin = async (call) => {
  const table = call.shell.jobs;
  const specs = call.argv.slice(1);
  if (specs.length === 0) {
    for (const job of [...table.list()]) {
      await job.done;
      job.reported = true;
      table.remove(job);
    }
    return 0;
  }
  let status = 0;
  for (const spec of specs) {
    const job = resolveJob(call, spec);
    const finished = job === undefined && /^\d+$/.test(spec) ? call.shell.jobs.finishedStatus(Number(spec)) : undefined;
    if (finished !== undefined) {
      status = finished;
      continue;
    }
    if (job === undefined) {
      await fail(call, `${spec}: no such job`);
      status = 127;
      continue;
    }
    status = await job.done;
    job.reported = true;
    table.remove(job);
  }
  return status;
};

/** `fg [%n]`: continues the job and waits for it as the foreground job (Ctrl-C reaches it). */
export const fgBuiltin: Builtin = async (call) => {
  const job = resolveJob(call, call.argv[1]);
  if (job === undefined) return fail(call, `${call.argv[1] ?? "current"}: no such job`);
  await print(call.stdout, `${job.command}\n`);
  job.state = job.state === "Done" ? "Done" : "Running";
  const restore = call.shell.takeTerminal(job.group, job.input);
  await job.group.signal("SIGCONT");
  try {
    const outcome = await call.shell.waitInForeground(job.done);
    if (outcome === "stopped") {
      job.state = "Stopped";
      await print(call.stderr, `\n${call.shell.jobs.describe(job)}\n`);
      return 148;
    }
    if (outcome === "detached") {
      call.shell.jobs.remove(job);
      return 0;
    }
    job.reported = true;
    call.shell.jobs.remove(job);
    job.input?.stream.end();
    return outcome;
  } finally {
    restore();
  }
};

/** `bg [%n]`: lets a stopped job run on in the background. */
export const bgBuiltin: Builtin = async (call) => {
  const job = resolveJob(call, call.argv[1]);
  if (job === undefined) return fail(call, `${call.argv[1] ?? "current"}: no such job`);
  if (job.state === "Stopped") job.state = "Running";
  await job.group.signal("SIGCONT");
  await print(call.stdout, `[${job.id}]${call.shell.jobs.mark(job)} ${job.command} &\n`);
  return 0;
};

/** Signal names without `SIG`, numbered as this machine numbers them. */
function signalTable(): [string, number][] {
  return Object.entries(osConstants.signals)
    .filter(([name]) => name.startsWith("SIG"))
    .map(([name, n]): [string, number] => [name.slice(3), n])
    .sort((a, b) => a[1] - b[1]);
}

function signalName(spec: string): string | null {
  if (/^\d+$/.test(spec)) {
    const found = signalTable().find(([, n]) => n === Number(spec));
    return found === undefined ? null : `SIG${found[0]}`;
  }
  const name = spec.toUpperCase().replace(/^SIG/, "");
  return signalTable().some(([n]) => n === name) ? `SIG${name}` : null;
}

/** `kill [-s SIG | -SIG | -n] %job|pid...`, `kill -l [status]`. PIDs are cluster-wide. */
export const killBuiltin: Builtin = async (call) => {
  const args = call.argv.slice(1);
  if (args[0] === "-l" || args[0] === "-L") {
    const status = args[1];
    if (status !== undefined) {
      const n = Number(status) > 128 ? Number(status) - 128 : Number(status);
      const found = signalTable().find(([, num]) => num === n);
      if (found === undefined) return fail(call, `${status}: invalid signal specification`);
      await print(call.stdout, `${found[0]}\n`);
      return 0;
    }
    await print(call.stdout, `${signalTable().map(([name, n]) => `${String(n).padStart(2)}) SIG${name}`).join("\n")}\n`);
    return 0;
  }
  let signal = "SIGTERM";
  if (args[0] === "-s" || args[0] === "-n") {
    args.shift();
    const name = signalName(args.shift() ?? "");
    if (name === null) return fail(call, "invalid signal specification");
    signal = name;
  } else if (args[0]?.startsWith("-") && args[0] !== "--") {
    const name = signalName(args.shift()?.slice(1) ?? "");
    if (name === null) return fail(call, "invalid signal specification");
    signal = name;
  }
  if (args[0] === "--") args.shift();
  if (args.length === 0) return fail(call, "usage: kill [-s sigspec | -signum | -sigspec] pid | jobspec ... or kill -l [sigspec]", 2);
  let status = 0;
  for (const target of args) {
    if (target.startsWith("%")) {
      const job = call.shell.jobs.find(target);
      if (job === undefined) {
        status = await fail(call, `${target}: no such job`);
        continue;
      }
      await job.group.signal(signal);
      if (signal === "SIGCONT" && job.state === "Stopped") job.state = "Running";
      continue;
    }
    if (!/^-?\d+$/.test(target)) {
      status = await fail(call, `${target}: arguments must be process or job IDs`);
      continue;
    }
    const pid = Number(target);
    const owned = call.shell.jobs.findByPid(pid)?.group.handles.find((h) => h.pid === pid);
    try {
      if (owned !== undefined) await owned.signal(signal);
      else await call.shell.killPid(pid, signal);
    } catch (err: unknown) {
      status = await fail(call, err instanceof Error ? err.message : String(err));
    }
  }
  return status;
};
