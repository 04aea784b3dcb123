import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";

const exec = promisify(execFile);
let cluster: TestCluster;
let dir: string;

beforeAll(async () => {
  cluster = await startTestCluster();
  dir = await mkdtemp(join(tmpdir(), "oneos-pipe-"));
});

afterAll(async () => {
  await cluster?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("cross-node pipelines", () => {
  it("seq | @n2 sort -rn | @n3 head -3 prints what the local pipeline prints", async () => {
    const local = await exec("sh", ["-c", "seq 1 5000000 | sort -rn | head -3"]);
    const remote = await cluster.sh("seq 1 5000000 | @n2 sort -rn | @n3 head -3");
    expect(remote.stderr).toBe("");
    expect(remote.status).toBe(0);
    expect(remote.stdout).toBe(local.stdout);
    expect(remote.stdout).toBe("5000000\n4999999\n4999998\n");
  });

  it("carries 100 MB of random bytes byte-exact through @n2 cat | @n3 sha256sum", async () => {
    const file = join(dir, "random.bin");
    await exec("sh", ["-c", `head -c 100000000 /dev/urandom > ${file}`]);
    const local = await exec("sha256sum", [file]);
    const expected = local.stdout.split(" ")[0]!;
    const remote = await cluster.sh(`@n1 cat ${file} | @n2 cat | @n3 sha256sum`);
    expect(remote.status).toBe(0);
    expect(remote.stdout.split(" ")[0]).toBe(expected);
  });

  it("a remote program gets the shell's cwd, exported variables and umask; a script without #! runs under sh", async () => {
    const r = await cluster.sh(`mkdir -p carried && cd carried && export GREETING=hello && umask 027 && umask && @n2 sh -c 'echo "$PWD $GREETING $(umask)"'`);
    expect(r.stderr).toBe("");
    expect(r.stdout.split("\n")[0]).toBe("0027");
    expect(r.stdout.split("\n")[1]).toMatch(/\/carried hello 0027$/);
    // A new file on another node is created with that mask.
    const f = await cluster.sh(`cd carried && umask 077 && @n3 touch made && @n1 stat -c %a made && umask -S`);
    expect(f.stdout).toBe("600\nu=rwx,g=,o=\n");
    const s = await cluster.sh(`cd carried && printf 'echo from-script "$1"\\n' > plain && chmod +x plain && @n3 ./plain one`);
    expect(s.stderr).toBe("");
    expect(s.stdout).toBe("from-script one\n");
  });

  it("feeds the shell's own stdin to the first stage", async () => {
    const r = await cluster.sh("@n2 tr a-z A-Z | @n3 cat", { input: "hello oneos\n" });
    expect(r.stdout).toBe("HELLO ONEOS\n");
  });

  it("ends `yes | @n2 head -1` at once: the writer dies by SIGPIPE", async () => {
    const r = await cluster.sh('@n1 yes oneos-sigpipe | @n2 head -1; echo "status=$?"', { timeoutMs: 20_000 });
    expect(r.stdout).toBe("oneos-sigpipe\nstatus=0\n");
    expect(r.ms).toBeLessThan(15_000);
    const ps = JSON.parse((await cluster.oneos(["ps", "-a", "--json"])).stdout) as { command: string; state: string; signal?: string }[];
    const yes = ps.find((p) => p.command === "yes oneos-sigpipe");
    expect(yes?.state).toBe("killed");
    expect(yes?.signal).toBe("SIGPIPE");
  });

  it("runs a command on every node with @*, each line prefixed with its node", async () => {
    const r = await cluster.sh("@* echo hi");
    expect(r.stdout.split("\n").filter(Boolean).sort()).toEqual(["n1: hi", "n2: hi", "n3: hi"]);
  });

  it("redirects output to a file and back", async () => {
    const file = join(dir, "out.txt");
    const r = await cluster.sh(`@n2 seq 1 3 > ${file}; @n3 cat < ${file}; echo more >> ${file}; @n1 wc -l ${file}`);
    expect(r.stdout).toBe(`1\n2\n3\n4 ${file}\n`);
  });
});

describe("exit status", () => {
  it("propagates exit codes exactly", async () => {
    const r = await cluster.sh("@n2 sh -c 'exit 7'; echo $?; @n3 false; echo $?; @n1 true && echo ok");
    expect(r.stdout).toBe("7\n1\nok\n");
  });

  it("reports a death by signal n as 128+n", async () => {
    const r = await cluster.sh("@n3 sh -c 'kill -TERM $$'; echo $?; @n2 sh -c 'kill -KILL $$'; echo $?");
    expect(r.stdout).toBe("143\n137\n");
  });

  it("is the status of the line for `oneos shell -c`", async () => {
    const r = await cluster.sh("@n2 sh -c 'exit 3'");
    expect(r.status).toBe(3);
  });
});

describe("errors", () => {
  it("a syntax error says where and exits 2", async () => {
    const r = await cluster.sh("echo 'unterminated");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/syntax error: 1:6:/);
  });

  it("an unknown command exits 127 with one clear line", async () => {
    const r = await cluster.sh("@n2 no-such-command-here");
    expect(r.status).toBe(127);
    expect(r.stderr).toBe("oneos: no-such-command-here: command not found\n");
  });

  it("an unknown node exits 2 and names the known nodes", async () => {
    const r = await cluster.sh("@n9 true");
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("oneos: unknown node 'n9' (known: n1, n2, n3)\n");
  });

  it("a usage error of the CLI exits 2", async () => {
    const r = await cluster.oneos(["cluster", "kill"]);
    expect(r.status).toBe(2);
  });
});
