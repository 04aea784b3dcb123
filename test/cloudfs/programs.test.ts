import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCloudFsCluster, sh, type CloudFsTestCluster } from "./cloudfs-cluster.js";

let c: CloudFsTestCluster;
let A: string;
let B: string;
let C: string;

beforeAll(async () => {
  c = await startCloudFsCluster(3);
  [A, B, C] = c.nodes.map((n) => n.mp) as [string, string, string];
});
afterAll(async () => {
  await c?.close();
});

/** A path as one shell word (a clone may live under a path with spaces or quotes). */
const q = (path: string): string => `'${path.replaceAll("'", "'\\''")}'`;

const ok = async (script: string, cwd: string): Promise<string> => {
  const r = await sh(script, { cwd, timeoutMs: 110_000 });
  if (r.code !== 0) throw new Error(`${script} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
};

describe("real programs inside CloudFS", () => {
  it("git init/add/commit on one node, log and status on another", async () => {
    await fsp.mkdir(join(A, "home", "repo"));
    const git = "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main";
    await ok(`${git} init -q && echo one > a.txt && mkdir -p src && echo 'int x;' > src/x.c && ${git} add . && ${git} commit -qm first && echo two >> a.txt && ${git} commit -qam second`, join(A, "home", "repo"));
    const log = await ok(`git log --format=%s`, join(B, "home", "repo"));
    expect(log.trim().split("\n")).toEqual(["second", "first"]);
    expect((await ok(`git status --porcelain`, join(C, "home", "repo"))).trim()).toBe("");
    await ok(`${git} gc -q && git fsck --full 2>&1`, join(C, "home", "repo"));
  });

  it("sqlite3 create/insert on one node, select on another", async () => {
    await fsp.mkdir(join(A, "home", "db"));
    await ok(
      `sqlite3 data.db "create table t(k integer primary key, v text); begin; ${Array.from({ length: 500 }, (_, i) => `insert into t(v) values('row${i}');`).join(" ")} commit;"`,
      join(A, "home", "db"),
    );
    expect((await ok(`sqlite3 data.db "select count(*), max(v) from t"`, join(B, "home", "db"))).trim()).toBe("500|row99");
    await ok(`sqlite3 data.db "pragma journal_mode=wal; insert into t(v) values('wal');"`, join(C, "home", "db"));
    expect((await ok(`sqlite3 data.db "select count(*) from t where v='wal'; pragma integrity_check;"`, join(C, "home", "db"))).trim()).toBe("1\nok");
  });

  it("tar extract of a source tree, diff -r against the original from another node", async () => {
    // This checkout's own dependency tree, wherever the clone is: a real source tree of some size.
    const src = fileURLToPath(new URL("../../node_modules/@nats-io", import.meta.url));
    await fsp.mkdir(join(A, "home", "tree"));
    const tarball = join(c.dir, "src.tar");
    await ok(`tar -cf ${q(tarball)} -C ${q(src)} .`, "/");
    await ok(`tar -xf ${q(tarball)}`, join(A, "home", "tree"));
    const r = await sh(`diff -r ${q(src)} ${q(join(B, "home", "tree"))}`, { timeoutMs: 110_000 });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("cc + make of a small C program: sources from one node, built on another, run on a third", async () => {
    const d = join(A, "home", "cproj");
    await fsp.mkdir(d);
    await fsp.writeFile(join(d, "main.c"), '#include <stdio.h>\n#include "lib.h"\nint main(void){printf("%d\\n", add(40, 2));return 0;}\n');
    await fsp.writeFile(join(d, "lib.c"), '#include "lib.h"\nint add(int a, int b){return a + b;}\n');
    await fsp.writeFile(join(d, "lib.h"), "int add(int a, int b);\n");
    await fsp.writeFile(join(d, "Makefile"), "prog: main.o lib.o\n\tcc -o $@ $^\n%.o: %.c lib.h\n\tcc -c -O2 -o $@ $<\nclean:\n\trm -f prog *.o\n");
    await ok("make -s", join(B, "home", "cproj"));
    expect((await ok("./prog", join(C, "home", "cproj"))).trim()).toBe("42");
    // an edit on C makes B rebuild only what changed
    await ok(`sleep 0.05; sed -i 's/a + b/a * b/' lib.c`, join(C, "home", "cproj"));
    const out = await ok("make", join(B, "home", "cproj"));
    expect(out).toMatch(/lib\.o/);
    expect(out).not.toMatch(/-o main\.o/);
    expect((await ok("./prog", join(A, "home", "cproj"))).trim()).toBe("80");
  });
});
