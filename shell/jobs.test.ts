import { describe, expect, it } from "vitest";
import { runOneos } from "./_test-shell.js";

describe("placement", () => {
  it("runs @node and @label commands on an accepted node", async () => {
    const run = await runOneos("seq 1 5 | @n2 sort -rn | @n3 head -3; @gpu=1 echo labelled");
    expect(run.stdout).toBe("5\n4\n3\nlabelled\n");
    expect(run.status).toBe(0);
  });

  it("refuses an unknown node with the known ones named and status 2", async () => {
    const run = await runOneos("@n9 echo hi");
    expect(run.status).toBe(2);
    expect(run.stderr).toBe("oneos: unknown node 'n9' (known: n1, n2, n3)\n");
  });

  it("runs @* once per node, each line prefixed with its node", async () => {
    const run = await runOneos("@* printf 'a\\nb\\n'");
    const lines = run.stdout.trim().split("\n").sort();
    expect(lines).toEqual(["n1: a", "n1: b", "n2: a", "n2: b", "n3: a", "n3: b"]);
    const err = await runOneos("@* sh -c 'echo oops >&2'");
    expect(err.stderr.trim().split("\n").sort()).toEqual(["n1: oops", "n2: oops", "n3: oops"]);
  });

  it("treats a quoted or expanded @word as an ordinary argument", async () => {
    const run = await runOneos("echo @n2; x=@n9; echo $x");
    expect(run.stdout).toBe("@n2\n@n9\n");
  });

  it("pipes @* output on", async () => {
    const run = await runOneos("@* echo hi | sort | head -1");
    expect(run.stdout).toBe("n1: hi\n");
  });
});

describe("background jobs", () => {
  it("runs cmd & concurrently and waits for it", async () => {
    const started = Date.now();
    const run = await runOneos("sleep 0.5 & sleep 0.5 & wait; echo done");
    expect(run.stdout).toBe("done\n");
    expect(Date.now() - started).toBeLessThan(950);
  });

  it("lists jobs as bash does and returns a job's status from wait %n", async () => {
    const run = await runOneos("sleep 5 & jobs; kill %1; wait %1; echo status $?");
    expect(run.stdout).toBe("[1]+  Running                 sleep 5 &\nstatus 143\n");
  });

  it("kills a job's process by PID and reports unknown jobs", async () => {
    const run = await runOneos("sleep 5 & kill -9 $!; wait $!; echo $?; kill %7; echo $?");
    expect(run.stdout).toBe("137\n1\n");
    expect(run.stderr).toMatch(/kill: %7: no such job/);
  });

  it("wait $! answers with the job's status after its process has exited, and after it left the table", async () => {
    const run = await runOneos("sh -c 'exit 7' & sleep 0.3; wait $!; echo $?; sh -c 'exit 5' & p=$!; wait; wait $p; echo $?");
    expect(run.stderr).toBe("");
    expect(run.stdout).toBe("7\n5\n");
  });

  it("hands a PID no job owns to killPid", async () => {
    const seen: [number, string][] = [];
    const run = await runOneos("kill -INT 4242", { killPid: async (pid, signal) => void seen.push([pid, signal]) });
    expect(run.status).toBe(0);
    expect(seen).toEqual([[4242, "SIGINT"]]);
  });

  it("brings a job to the foreground with fg", async () => {
    const run = await runOneos("sh -c 'sleep 0.2; exit 5' & fg %1; echo $?");
    expect(run.stdout).toBe("sh -c 'sleep 0.2; exit 5'\n5\n");
  });

  it("lists signals with kill -l", async () => {
    const run = await runOneos("kill -l 143; kill -l | head -1");
    expect(run.stdout).toBe("TERM\n 1) SIGHUP\n");
  });

  it("keeps a background job's variables to itself", async () => {
    const run = await runOneos("x=1; x=2 & wait; echo $x; cd / & wait; pwd", { cwd: "/tmp" });
    expect(run.stdout).toBe("1\n/tmp\n");
  });
});

describe("builtins", () => {
  it("reports what type finds", async () => {
    const run = await runOneos("f() { :; }; type cd f sh nope-xyz");
    expect(run.stdout).toMatch(/^cd is a shell builtin\nf is a function\nsh is \/.*\/sh\n$/);
    expect(run.status).toBe(1);
  });

  it("reads lines with read, fields split on IFS", async () => {
    const run = await runOneos("read a b; echo \"[$a] [$b]\"; read -r c; echo \"$c\"", { stdin: "one two three\nx\\y\n" });
    expect(run.stdout).toBe("[one] [two three]\nx\\y\n");
  });

  it("exports and unsets variables for launched commands", async () => {
    const run = await runOneos("export A=1 B; B=2; sh -c 'echo $A$B'; unset A; sh -c 'echo [$A]'; export | grep -c 'declare -x B'");
    expect(run.stdout).toBe("12\n[]\n1\n");
  });

  it("runs a builtin placed on a node as that node's program", async () => {
    const run = await runOneos("@n2 echo remote; @n2 cd /");
    expect(run.stdout).toBe("remote\n");
    expect(run.status).toBe(127);
  });
});
