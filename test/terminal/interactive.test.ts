import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";
import { CLI } from "../harness/oneos-cluster.js";
import { PtyDriver } from "../harness/pty-driver.js";

const PROMPT = /root@oneos:~\$ $/;

let cluster: TestCluster;
const drivers: PtyDriver[] = [];

beforeAll(async () => {
  cluster = await startTestCluster();
});

afterEach(() => {
  for (const d of drivers.splice(0)) d.kill("SIGKILL");
});

afterAll(async () => {
  await cluster?.close();
});

async function shell(options: { cols?: number; rows?: number } = {}): Promise<PtyDriver> {
  const d = new PtyDriver(["shell"], { home: cluster.home, ...options });
  drivers.push(d);
  await d.waitFor(PROMPT);
  return d;
}

/** Runs a line and waits for the next prompt; returns what it printed. */
async function line(d: PtyDriver, text: string, timeoutMs = 15_000): Promise<string> {
  const from = d.mark();
  d.type(`${text}\r`);
  await d.waitFor(/\n[^\n]*root@oneos:~\$ $/, { from, timeoutMs });
  return d.text.slice(from);
}

interface PsRow {
  pid: number;
  state: string;
  command: string;
}

async function ps(): Promise<PsRow[]> {
  return JSON.parse((await cluster.oneos(["ps", "--json", "-a"])).stdout) as PsRow[];
}

describe("interactive programs on remote nodes", () => {
  it("a remote python3 REPL computes 6*7 on a real terminal", async () => {
    const d = await shell();
    d.type("@n2 python3 -q\r");
    await d.waitFor(">>> ");
    let from = d.mark();
    d.type("6*7\r");
    await d.waitFor("42", { from });
    from = d.mark();
    d.type("import os; print('tty', os.isatty(0), os.isatty(1))\r");
    await d.waitFor("tty True True", { from });
    from = d.mark();
    d.type("\x04");
    await d.waitFor(PROMPT, { from });
  });

  it("a program on a remote terminal has its cluster PID as its own ($$, os.getpid())", async () => {
    const d = await shell();
    const out = await line(d, "@n3 python3 -c 'import os, sys; print(\"pid\", os.getpid(), os.isatty(0))'");
    const pid = Number(/pid (\d+) True/.exec(out)?.[1]);
    const row = (await ps()).find((p) => p.pid === pid);
    expect(row?.command).toContain("import os, sys");
  });

  it("a program on a remote terminal reaches a process on another node with kill(2)", async () => {
    const d = await shell();
    const out = await line(d, `@n1 sleep 300 & @n2 python3 -c "import os, sys; os.kill(int(sys.argv[1]), 15); print('sent')" $!; wait %1; echo status=$?`);
    expect(out).toContain("sent");
    expect(out).toContain("status=143");
  });

  it("Ctrl-C of a remote sleep returns to the prompt within 1 s with $? = 130", async () => {
    const d = await shell();
    d.type("@n2 sleep 100\r");
    await eventually(async () => ((await ps()).some((p) => p.command === "sleep 100" && p.state === "running") ? true : undefined), 10_000, "sleep 100");
    const from = d.mark();
    d.type("\x03");
    const elapsed = await d.waitFor(PROMPT, { from, timeoutMs: 5000 });
    expect(elapsed).toBeLessThan(1000);
    expect(await line(d, "echo status=$?")).toContain("status=130");
  });

  it("Ctrl-Z stops a remote job; bg runs it on; fg brings it back for Ctrl-C", async () => {
    const d = await shell();
    d.type("@n3 sleep 60\r");
    await eventually(async () => ((await ps()).some((p) => p.command === "sleep 60" && p.state === "running") ? true : undefined), 10_000, "sleep 60");
    let from = d.mark();
    d.type("\x1a");
    await d.waitFor(/\[1\]\+\s+Stopped\s+@n3 sleep 60/, { from });
    await d.waitFor(PROMPT, { from });
    expect(await line(d, "echo status=$?")).toContain("status=148");
    const stopped = (await ps()).find((p) => p.command === "sleep 60");
    expect(stopped?.state).toBe("stopped");
    expect(await line(d, "bg")).toContain("[1]+ @n3 sleep 60 &");
    expect(await line(d, "jobs")).toMatch(/\[1\]\+\s+Running\s+@n3 sleep 60 &/);
    from = d.mark();
    d.type("fg\r");
    await d.waitFor("@n3 sleep 60", { from });
    d.type("\x03");
    await d.waitFor(PROMPT, { from });
    expect(await line(d, "echo status=$?")).toContain("status=130");
  });

  it("the remote terminal has the caller's size, and a resize is seen by the next command", async () => {
    const d = await shell({ cols: 100, rows: 30 });
    expect(await line(d, "@n2 stty size")).toContain("30 100");
    d.pty.resize(120, 40);
    await new Promise((r) => setTimeout(r, 300));
    expect(await line(d, "@n3 stty size")).toContain("40 120");
  });

  it("a terminal that reports no size (0x0, as some consoles and pty wrappers do) still runs remote commands at 80x24", async () => {
    // The terminal is told it has no size before the shell starts in it.
    const d = new PtyDriver(["-c", `stty cols 0 rows 0; exec ${process.execPath} ${CLI} shell`], { home: cluster.home, program: "sh" });
    drivers.push(d);
    await d.waitFor(PROMPT);
    const out = await line(d, "echo sized > sized.txt; @n3 cat sized.txt; @n2 stty size");
    expect(out).toContain("sized\n");
    expect(out).toContain("24 80");
    expect(out).not.toMatch(/expected an integer/);
  });

  it("a detached session runs on and is re-attached from another terminal with the output in between", async () => {
    const d = await shell();
    let from = d.mark();
    d.type(`@n2 sh -c 'i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.5; done'\r`);
    await d.waitFor("tick2", { from });
    d.type("\x1dd");
    await d.waitFor(/detached: (\d+) on n2/, { from });
    const pid = Number(/detached: (\d+) on n2/.exec(d.text.slice(from))![1]);
    const lastSeen = Math.max(...[...d.text.slice(from).matchAll(/tick(\d+)/g)].map((m) => Number(m[1])));
    await d.waitFor(PROMPT, { from });
    const sessions = JSON.parse((await cluster.oneos(["sessions", "--json"])).stdout) as { pid: number; terminal: string }[];
    expect(sessions.find((s) => s.pid === pid)?.terminal).toBe("detached");
    await new Promise((r) => setTimeout(r, 2000));

    const a = new PtyDriver(["attach", String(pid)], { home: cluster.home });
    drivers.push(a);
    await a.waitFor(new RegExp(`tick${lastSeen + 3}`));
    // the replayed scrollback holds what was printed while nobody was attached
    expect(a.text).toContain(`tick${lastSeen + 1}`);
    from = a.mark();
    a.type("\x03");
    const exit = await a.exited();
    expect(exit.exitCode).toBe(130);
  });

  it("closing the terminal hangs up the remote foreground program", async () => {
    const d = await shell();
    d.type("@n3 sleep 301\r");
    const p = await eventually(async () => (await ps()).find((x) => x.command === "sleep 301" && x.state === "running"), 10_000, "sleep 301");
    d.kill("SIGHUP");
    await eventually(async () => ((await ps()).find((x) => x.pid === p.pid)?.state === "killed" ? true : undefined), 15_000, "SIGHUP to reach it");
  });
});
