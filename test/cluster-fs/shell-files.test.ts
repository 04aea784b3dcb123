import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster();
});

afterAll(async () => {
  await cluster?.close();
});

describe("one file tree from the shell", () => {
  it("starts in $HOME on CloudFS; cluster status names each node's own mount", async () => {
    const r = await cluster.sh("pwd; echo $HOME");
    expect(r.stdout).toBe("/home/root\n/home/root\n");
    const mounts = (await cluster.status()).map((n) => n.mount);
    expect(new Set(mounts).size).toBe(3);
    for (const m of mounts) expect(m).toMatch(/\/mnt$/);
  });

  it("each node's processes see the node's name as their host name (uname -n, /proc); the machine keeps its own", async () => {
    const r = await cluster.sh("@n1 uname -n; @n2 uname -n; @n3 cat /proc/sys/kernel/hostname; @n2 sh -c 'uname -n'");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("n1\nn2\nn3\nn2\n");
    expect(["n1", "n2", "n3"]).not.toContain(hostname());
  });

  it("getpid() is the cluster PID: $$, /proc/self and a node's ps agree with oneos ps", async () => {
    const r = await cluster.sh("@n2 sh -c 'echo $$; readlink /proc/self; ps -o pid= -p $$'");
    expect(r.stderr).toBe("");
    const [dollar, self, fromPs] = r.stdout.trim().split("\n").map((l) => Number(l.trim()));
    // readlink runs as a child of sh: a PID of the node's own, not the cluster's (those start at 2,000,000).
    expect(self).toBeGreaterThanOrEqual(2_000_000);
    expect(fromPs).toBe(dollar);
    const table = JSON.parse((await cluster.oneos(["ps", "-a", "--json"])).stdout) as { pid: number; node: string; command: string }[];
    expect(table.find((p) => p.pid === dollar)).toMatchObject({ node: "n2", command: expect.stringContaining("echo $$") });
    // A background job on n1: $! is its cluster PID, ps there lists it under it, kill there reaches it.
    const bg = await cluster.sh("@n1 sleep 300 & echo $!; @n1 ps -eo pid,args; @n1 kill -TERM $!; wait $!; echo status $?");
    const lines = bg.stdout.trim().split("\n");
    const pid = Number(lines[0]);
    expect(lines.filter((l) => l.trim() === `${pid} sleep 300`)).toHaveLength(1);
    expect(lines.at(-1)).toBe("status 143");
    // Each node's /proc is its own PID namespace's: PID 1 is the node's init, not the machine's.
    const init = await cluster.sh("@n3 cat /proc/1/comm");
    expect(init.stdout).toBe("oneos-init\n");
  });

  it("one /proc: ps, pgrep and top on any node list the whole cluster's processes; /bin/kill and pkill reach them", async () => {
    const started = await cluster.sh("@n1 sleep 301 & echo $!; @n3 sleep 302 & echo $!");
    const [onN1, onN3] = started.stdout.trim().split("\n").map(Number);
    const listed = await cluster.sh(
      "@n2 ps -eo pid=,args=; echo --; @n2 pgrep -f 'sleep 30[12]'; echo --; @n2 top -b -n1 -w 200; echo --; @n2 cat /proc/1/comm; @n2 readlink /proc/self/exe",
    );
    expect(listed.stderr).toBe("");
    const [ps, pgrep, top, own] = listed.stdout.split("--\n");
    const psRows = ps!.trim().split("\n").map((l) => l.trim());
    expect(psRows).toContain(`${onN1} sleep 301`);
    expect(psRows).toContain(`${onN3} sleep 302`);
    expect(pgrep!.trim().split("\n").map(Number).sort()).toEqual([onN1, onN3].sort());
    const topPids = top!.split("\n").map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(topPids).toContain(onN1);
    expect(topPids).toContain(onN3);
    // Machine-wide and self entries stay the node's own.
    expect(own).toBe("oneos-init\n/usr/bin/readlink\n");
    const killed = await cluster.sh(`@n3 /bin/kill -TERM ${onN1}; echo kill=$?; @n2 pkill -f 'sleep 302'; echo pkill=$?`);
    expect(killed.stdout).toBe("kill=0\npkill=0\n");
    const table = await eventually(async () => {
      const rows = JSON.parse((await cluster.oneos(["ps", "-a", "--json"])).stdout) as { pid: number; state: string; status?: number }[];
      const ended = rows.filter((p) => (p.pid === onN1 || p.pid === onN3) && p.state !== "running");
      return ended.length === 2 ? ended : undefined;
    }, 10_000, "both sleeps ended");
    expect(table.map((p) => p.status)).toEqual([143, 143]);
  });

  it("echo hi > notes.txt; @n3 cat notes.txt", async () => {
    const r = await cluster.sh("echo hi > notes.txt; @n3 cat notes.txt; @n2 cat notes.txt");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hi\nhi\n");
  });

  it("a file closed on n1 is read byte-exact on n2 and n3 right after", async () => {
    const r = await cluster.sh(
      "@n1 sh -c 'head -c 3000000 /dev/urandom > blob; sha256sum blob' && @n2 sha256sum blob && @n3 sha256sum blob",
    );
    const sums = r.stdout.trim().split("\n").map((l) => l.split(" ")[0]);
    expect(sums).toHaveLength(3);
    expect(new Set(sums).size).toBe(1);
  });

  it("renames and unlinks on one node are seen by the others", async () => {
    const r = await cluster.sh("@n1 sh -c 'echo x > a; mv a b'; @n2 ls; @n3 rm b; @n1 ls; echo end");
    expect(r.stdout).toContain("b\n");
    expect(r.stdout.trim().split("\n").at(-1)).toBe("end");
    expect(r.stdout).not.toMatch(/^a$/m);
    const after = await cluster.sh("@n2 ls b");
    expect(after.status).not.toBe(0);
  });

  it("git, make, cc, sqlite3 and tar work across nodes", async () => {
    const r = await cluster.sh(`
      mkdir -p proj && cd proj
      @n1 git init -q . && @n1 git config user.email a@b && @n1 git config user.name A
      printf 'int main(void){return 42;}\\n' > main.c
      printf 'app: main.c\\n\\tcc -o app main.c\\n' > Makefile
      @n1 git add . && @n1 git commit -qm init && @n2 git log --format=%s
      @n2 make -s && @n3 ./app; echo "app=$?"
      @n3 sqlite3 data.db 'create table t(x); insert into t values (1),(2),(3);' && @n1 sqlite3 data.db 'select sum(x) from t'
      @n1 sh -c 'mkdir -p src && cd src && seq 1 2000 > numbers && cp numbers copy && cd .. && tar -cf src.tar src'
      mkdir -p out && cd out && @n2 tar -xf ../src.tar && @n3 diff -r src ../src && echo same
    `, { timeoutMs: 120_000 });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("init\napp=42\n6\nsame\n");
  });

  it("a redirection into a missing directory fails cleanly", async () => {
    const r = await cluster.sh("echo x > /home/root/no/such/dir/f; echo status=$?");
    expect(r.stdout).toBe("status=1\n");
    expect(r.stderr).toMatch(/No such file or directory/);
  });
});

describe("node loss", () => {
  // Write-back: a lost node loses what it had not stored (the README's consistency model), so the
  // files are synced first: `sync FILE` fsyncs it, and an fsync stores everything the node did before.
  it("every file synced before a node is lost is still there, byte-exact, on both survivors", async () => {
    const write = await cluster.sh(
      "mkdir -p many && @n2 sh -c 'cd many && for i in $(seq 1 200); do head -c $((1000 + i * 97)) /dev/urandom > f$i; done && sha256sum f* > ../sums && sync ../sums' && @n2 wc -l sums",
      { timeoutMs: 120_000 },
    );
    expect(write.stdout.trim()).toMatch(/^200 /);
    expect((await cluster.oneos(["cluster", "kill", "n2"])).status).toBe(0);
    for (const node of ["n1", "n3"]) {
      const check = await cluster.sh(`cd many && @${node} sha256sum --quiet -c ../sums && echo ok-${node}`, { timeoutMs: 120_000 });
      expect(check.stderr).toBe("");
      expect(check.stdout).toBe(`ok-${node}\n`);
    }
  });
});
