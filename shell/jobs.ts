import { ProcessGroup } from "./process-group.js";
import type { JobInput } from "./terminal-input.js";

export type JobState = "Running" | "Stopped" | "Done";

/** A background (or stopped) job: what `jobs`, `fg`, `bg`, `wait` and `kill %n` work on. */
export class Job {
  state: JobState = "Running";
  status: number | null = null;
  /** Set once its `Done` line was printed or it was waited for. */
  reported = false;
  /** The keyboard input of a job stopped in the foreground: `fg` attaches it again. */
  input?: JobInput;
  /** Its first process's PID (`$!`): `wait $!` finds the job after that process has exited too. */
  firstPid: number | undefined;
  readonly done: Promise<number>;

  constructor(
    readonly id: number,
    /** The command line as typed, without the `&`. */
    readonly command: string,
    readonly group: ProcessGroup,
    run: Promise<number>,
  ) {
    this.done = run.then((status) => {
      this.state = "Done";
      this.status = status;
      return status;
    });
  }

  /** Every PID the job has started and not yet seen exit. */
  get pids(): number[] {
    return this.group.handles.map((h) => h.pid);
  }
}

/** Statuses of finished jobs kept for `wait PID`. */
const MAX_FINISHED = 64;

/** The shell's job table, numbered as bash numbers it (lowest free number above the highest in use). */
export class JobTable {
  readonly #jobs: Job[] = [];

  add(command: string, group: ProcessGroup, run: Promise<number>): Job {
    const id = (this.#jobs.at(-1)?.id ?? 0) + 1;
    const job = new Job(id, command, group, run);
    this.#jobs.push(job);
    return job;
  }

  list(): readonly Job[] {
    return this.#jobs;
  }

  /** `%1`, `%+`/`%%` (current), `%-` (previous), `%name` (command starts with name). */
  find(spec: string): Job | undefined {
    if (spec === "%%" || spec === "%+" || spec === "%") return this.#jobs.at(-1);
    if (spec === "%-") return this.#jobs.at(-2);
    const number = /^%(\d+)$/.exec(spec);
    if (number) return this.#jobs.find((j) => j.id === Number(number[1]));
    if (spec.startsWith("%")) return this.#jobs.find((j) => j.command.startsWith(spec.slice(1)));
    return undefined;
  }

  findByPid(pid: number): Job | undefined {
    return this.#jobs.find((j) => j.firstPid === pid || j.group.handles.some((h) => h.pid === pid));
  }

  /** The status of a job that left the table, by its `$!` (POSIX: `wait PID` still answers with it). */
  finishedStatus(pid: number): number | undefined {
    return this.#finished.get(pid);
  }

  /** The last statuses of jobs that left the table, by their first PID. */
  readonly #finished = new Map<number, number>();

  /** `+` marks the current job, `-` the previous one. */
  mark(job: Job): string {
    if (job === this.#jobs.at(-1)) return "+";
    if (job === this.#jobs.at(-2)) return "-";
    return " ";
  }

  /** A `jobs` line as bash prints it: `[1]+  Running                 sleep 10 &`. */
  describe(job: Job, options: { withPid?: boolean } = {}): string {
    const state =
      job.state === "Done" ? (job.status === 0 ? "Done" : `Exit ${job.status ?? ""}`) : job.state;
    const command = job.state === "Running" ? `${job.command} &` : job.command;
    const pid = options.withPid ? `${job.pids[0] ?? ""} ` : "";
    return `[${job.id}]${this.mark(job)}  ${pid}${state.padEnd(24)}${command}`;
  }

  remove(job: Job): void {
    const at = this.#jobs.indexOf(job);
    if (at !== -1) this.#jobs.splice(at, 1);
    if (job.firstPid !== undefined && job.status !== null) {
      this.#finished.set(job.firstPid, job.status);
      if (this.#finished.size > MAX_FINISHED) this.#finished.delete(this.#finished.keys().next().value!);
    }
  }

  /** Finished jobs not yet reported, removed from the table: the `Done` lines before the next prompt. */
  reap(): string[] {
    const lines: string[] = [];
    for (const job of [...this.#jobs]) {
      if (job.state !== "Done") continue;
      if (!job.reported) lines.push(this.describe(job));
      this.remove(job);
    }
    return lines;
  }
}
