import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers } from "@nats-io/transport-node";
import { AUTH_SUBJECTS, decode, encode, nodeSubject, parseAuthReply, parseNodeReply, SESSION_HEADER, signSession } from "../../pseudokernel/index.js";
import { eventually, startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";

let cluster: TestCluster;

/** `oneos shell --user NAME -c LINE` with the password on stdin's first line. */
const as = (user: string, password: string, line: string, input = "") =>
  cluster.oneos(["shell", "--user", user, "-c", line], { input: `${password}\n${input}` });

interface AuditLine {
  event: string;
  user: string;
  [k: string]: unknown;
}

/** A process of `user` running `command`, once the cluster's table lists it. */
async function runningAs(user: string, command: string): Promise<{ pid: number }> {
  return await eventually(async () => {
    const ps = JSON.parse((await cluster.oneos(["ps", "--json"])).stdout) as { pid: number; user: string; argv: string[]; state: string }[];
    return ps.find((p) => p.argv.join(" ") === command && p.user === user && p.state === "running");
  }, 15_000, `${user}'s ${command} in ps`);
}

async function audit(): Promise<AuditLine[]> {
  const r = await cluster.oneos(["audit"]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as AuditLine);
}

beforeAll(async () => {
  cluster = await startTestCluster();
  const made = await cluster.sh("useradd --password-stdin alice <<< alice-pw && useradd --password-stdin bob <<< bob-pw");
  expect(made.status, made.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

describe("users and sessions", () => {
  it("root's shell is root; useradd made two users with their own uids and 0700 homes", async () => {
    const r = await cluster.sh("whoami; id; id alice; ls -ln /home");
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe("root");
    expect(lines[1]).toBe("uid=0(root) gid=0(root) groups=0(root)");
    expect(lines[2]).toMatch(/^uid=(\d+)\(alice\) gid=\1\(alice\) groups=\1\(alice\)$/);
    const uid = Number(/^uid=(\d+)/.exec(lines[2]!)![1]);
    expect(uid).toBeGreaterThanOrEqual(2000);
    expect(r.stdout).toMatch(new RegExp(`drwx------ +\\d+ ${uid} +${uid} .* alice`));
  });

  it("a user logs in with the password and runs as their uid on every node", async () => {
    const r = await as("alice", "alice-pw", "whoami; pwd; @n1 id -un; @n2 id -u; @n3 id -gn; echo $USER");
    expect(r.status, r.stderr).toBe(0);
    const [who, pwd, n1, n2, n3, user] = r.stdout.trim().split("\n");
    expect([who, pwd, n1, n3, user]).toEqual(["alice", "/home/alice", "alice", "alice", "alice"]);
    expect(Number(n2)).toBeGreaterThanOrEqual(2000);
  });

  it("a wrong password, an unknown user and an empty one are refused", async () => {
    for (const [user, password] of [["alice", "bob-pw"], ["mallory", "x"], ["bob", ""]] as const) {
      const r = await as(user, password, "echo in");
      expect(r.status).not.toBe(0);
      expect(r.stdout).not.toContain("in");
      expect(r.stderr).toMatch(/login incorrect|password/);
    }
    const lines = await audit();
    expect(lines.some((l) => l.event === "login-failed" && l.user === "mallory")).toBe(true);
  });

  it("file modes hold across nodes: bob cannot read or write alice's private files", async () => {
    const w = await as("alice", "alice-pw", "@n1 sh -c 'echo secret > private.txt; chmod 600 private.txt; echo open > open.txt; chmod 644 open.txt; chmod 755 /home/alice'");
    expect(w.status, w.stderr).toBe(0);
    const r = await as("bob", "bob-pw", "@n2 cat /home/alice/open.txt; @n3 cat /home/alice/private.txt; echo rc=$?; echo hack > /home/alice/open.txt; echo rc=$?; @n3 rm -f /home/alice/open.txt; echo rc=$?");
    expect(r.stdout, r.stderr).toContain("open\n");
    expect(r.stdout).not.toContain("secret");
    expect(r.stdout).toMatch(/rc=1\nrc=1\nrc=1/);
    expect(r.stderr).toMatch(/private.txt: Permission denied/);
    const still = await as("alice", "alice-pw", "@n2 cat private.txt open.txt; @n3 ls -l private.txt");
    expect(still.stdout).toMatch(/^secret\nopen\n-rw------- 1 alice alice/);
    // A file bob makes in his own home is his, on every node.
    const own = await as("bob", "bob-pw", "@n1 touch mine; @n3 stat -c %U:%G:%a mine; cat /home/bob/mine; echo rc=$?");
    expect(own.stdout).toMatch(/^bob:bob:644\n/);
    // root may read anything.
    const root = await cluster.sh("@n2 cat /home/alice/private.txt");
    expect(root.stdout).toBe("secret\n");
  });

  it("kill of another user's process is EPERM; the owner and root may kill it; the audit log has it", async () => {
    const job = cluster.start(["shell", "--user", "alice", "-c", "@n2 sleep 60"], { input: "alice-pw\n" });
    const sleeper = await runningAs("alice", "sleep 60");
    const denied = await as("bob", "bob-pw", `kill ${sleeper.pid}; echo rc=$?`);
    expect(denied.stdout).toContain("rc=1");
    expect(denied.stderr).toMatch(/Operation not permitted/);
    const stillThere = JSON.parse((await cluster.oneos(["ps", "--json"])).stdout) as { pid: number; state: string }[];
    expect(stillThere.find((p) => p.pid === sleeper.pid)?.state).toBe("running");
    const killed = await as("alice", "alice-pw", `kill ${sleeper.pid}; echo rc=$?`);
    expect(killed.stdout).toContain("rc=0");
    const ended = await job.done;
    expect(ended.status).toBe(143);
    const lines = await audit();
    expect(lines.some((l) => l.event === "kill" && l.user === "bob" && l.pid === sleeper.pid && l.ok === false)).toBe(true);
    expect(lines.some((l) => l.event === "kill" && l.user === "alice" && l.pid === sleeper.pid && l.ok === true)).toBe(true);
    expect(lines.some((l) => l.event === "spawn" && l.user === "alice" && (l.argv as string[])[0] === "sleep")).toBe(true);
    expect(lines.some((l) => l.event === "login" && l.user === "bob")).toBe(true);
    expect(lines.some((l) => l.event === "useradd" && l.user === "root" && l.name === "alice")).toBe(true);
  });

  it("a command is looked up along PATH as its user would exec it: a directory they cannot search is passed over", async () => {
    const setup = await cluster.sh(
      "mkdir -p /home/root-tools /home/shared-tools && chmod 700 /home/root-tools && chmod 755 /home/shared-tools && " +
        "printf '#!/bin/sh\\necho root-only\\n' > /home/root-tools/greet && printf '#!/bin/sh\\necho shared\\n' > /home/shared-tools/greet && " +
        "chmod 755 /home/root-tools/greet /home/shared-tools/greet && echo ok",
    );
    expect(setup.stdout).toBe("ok\n");
    const bob = await as("bob", "bob-pw", "PATH=/home/root-tools:/home/shared-tools:/usr/bin:/bin; @n2 greet; PATH=/home/root-tools:/usr/bin:/bin; @n3 greet; echo rc=$?");
    expect(bob.stdout).toBe("shared\nrc=126\n");
    expect(bob.stderr).toMatch(/greet: Permission denied/);
    const root = await cluster.sh("PATH=/home/root-tools:/home/shared-tools:/usr/bin:/bin; @n2 greet");
    expect(root.stdout).toBe("root-only\n");
  });

  it("kill(2) across nodes: programs' own kills reach another node's process, with EPERM and ESRCH exact", async () => {
    const job = cluster.start(["shell", "--user", "alice", "-c", "@n1 sleep 62"], { input: "alice-pw\n" });
    const sleeper = await runningAs("alice", "sleep 62");
    // Python's os.kill, bob's, from n2: refused; a PID nobody has: no such process.
    const probe = [
      "import os, sys",
      "def ask(pid, sig):",
      "    try:",
      "        os.kill(pid, sig); return 'ok'",
      "    except PermissionError: return 'EPERM'",
      "    except ProcessLookupError: return 'ESRCH'",
      `print(ask(${sleeper.pid}, 15), ask(${sleeper.pid}, 0), ask(999999, 15))`,
    ].join("\n");
    const bob = await as("bob", "bob-pw", `@n2 python3 -c "${probe}"`);
    expect(bob.stderr).toBe("");
    expect(bob.stdout).toBe("EPERM EPERM ESRCH\n");
    // Alice's kill -0 and /bin/kill from n3 reach it: it ends with SIGTERM.
    const alice = await as("alice", "alice-pw", `@n3 sh -c 'kill -0 ${sleeper.pid} && /bin/kill -TERM ${sleeper.pid}; echo rc=$?'`);
    expect(alice.stdout).toBe("rc=0\n");
    expect((await job.done).status).toBe(143);
    // Relayed as the caller's user: n1 audited alice's kill as hers.
    const lines = await audit();
    expect(lines.some((l) => l.event === "kill" && l.user === "alice" && l.pid === sleeper.pid && l.ok === true)).toBe(true);
  });

  it("the oneos verbs inside the shell run as the session's user: ps, nodes, top, ports and services see the cluster, kill of another user's process is EPERM, output pipes", async () => {
    const job = cluster.start(["shell", "--user", "alice", "-c", "@n3 sleep 61"], { input: "alice-pw\n" });
    const sleeper = await runningAs("alice", "sleep 61");
    const line = [
      `oneos ps | awk '$1 == ${sleeper.pid} { print $3, $4, $5 }'`,
      "oneos nodes | tail -n +2 | awk '{ print $1 }' | tr '\\n' ' '; echo",
      `oneos kill ${sleeper.pid}; echo rc=$?`,
      "oneos top | head -1 | sed 's/.*— //; s/,.*//'",
      "oneos ports | head -1 | awk '{ print $1, $2, $3 }'",
      "oneos services | head -1 | awk '{ print $1, $2 }'",
      "oneos df; echo rc=$?",
    ].join("; ");
    const bob = await as("bob", "bob-pw", line);
    expect(bob.stdout.split("\n")).toEqual(["n3 alice running", "n1 n2 n3 ", "rc=1", "3/3 nodes ready", "PORT NODE PID", "NAME STATE", "rc=2", ""]);
    expect(bob.stderr).toMatch(/kill: .*Operation not permitted/);
    expect(bob.stderr).toMatch(/df: not available inside the shell/);
    const alice = await as("alice", "alice-pw", `oneos kill -TERM ${sleeper.pid}; echo rc=$?`);
    expect(alice.stdout).toBe("rc=0\n");
    expect((await job.done).status).toBe(143);
    // The builtin acted with each session's rights, not the admin's: bob's attempt is audited as his, refused.
    const lines = await audit();
    expect(lines.some((l) => l.event === "kill" && l.user === "bob" && l.pid === sleeper.pid && l.ok === false)).toBe(true);
    expect(lines.some((l) => l.event === "kill" && l.user === "alice" && l.pid === sleeper.pid && l.ok === true)).toBe(true);
  });

  it("only root manages users; a user changes their own password with the old one, which ends old sessions", async () => {
    const r = await as("bob", "bob-pw", "useradd eve; echo rc=$?; userdel alice; echo rc=$?; passwd alice <<< x; echo rc=$?");
    expect(r.stdout).toBe("rc=1\nrc=1\nrc=1\n");
    expect(r.stderr).toMatch(/only root/);
    // An old session of bob's, then the change.
    const nc = await cluster.connect("shell");
    try {
      const login = parseAuthReply(decode((await nc.request(AUTH_SUBJECTS.login, encode({ type: "login", user: "bob", password: "bob-pw" }))).data));
      expect(login.type).toBe("session");
      const change = await as("bob", "bob-pw", "printf 'bob-pw\\nbob-new\\n' | passwd; echo rc=$?; whoami");
      expect(change.stdout).toBe("rc=0\nbob\n");
      const h = headers();
      h.set(SESSION_HEADER, login.type === "session" ? login.token : "");
      const old = parseNodeReply(decode((await nc.request(nodeSubject("n1", "fs"), encode({ type: "fs", op: "stat", path: "/home/bob" }), { headers: h })).data));
      expect(old.type).toBe("error");
      expect(old.type === "error" && old.error.message).toMatch(/password change/);
    } finally {
      await nc.close();
    }
    expect((await as("bob", "bob-pw", "whoami")).status).not.toBe(0);
    expect((await as("bob", "bob-new", "whoami")).stdout).toBe("bob\n");
  });

  it("sessions expire; a forged or missing session is refused by every runtime; the shell identity cannot issue sessions", async () => {
    const nc = await cluster.connect("shell");
    try {
      const ask = async (token: string | undefined, notify = "_INBOX.x") => {
        const h = headers();
        if (token !== undefined) h.set(SESSION_HEADER, token);
        const msg = await nc.request(nodeSubject("n2", "spawn"), encode({ type: "spawn", argv: ["true"], env: {}, cwd: "/", umask: 18, user: "root", ppid: 0, stdio: [{ kind: "null" }, { kind: "null" }, { kind: "null" }], notify }), { headers: h, timeout: 5000 });
        return parseNodeReply(decode(msg.data));
      };
      const none = await ask(undefined);
      expect(none.type === "error" && none.error.code).toBe("EPERM");
      const forged = await ask(signSession(new Uint8Array(32), { user: "root", uid: 0, gid: 0, home: "/home/root", exp: Date.now() + 60_000, gen: 0 }));
      expect(forged.type === "error" && forged.error.message).toMatch(/not valid/);
      const short = parseAuthReply(decode((await nc.request(AUTH_SUBJECTS.login, encode({ type: "login", user: "alice", password: "alice-pw", ttlMs: 1500 }))).data));
      expect(short.type).toBe("session");
      const token = short.type === "session" ? short.token : "";
      const fresh = await ask(token);
      expect(fresh.type).toBe("spawned");
      // A user cannot make a runtime publish their exit event where they may not publish themselves.
      const hijack = await ask(token, "oneos.auth.issue");
      expect(hijack.type === "error" && hijack.error.code).toBe("EPERM");
      await new Promise((r) => setTimeout(r, 2000));
      const expired = await ask(token);
      expect(expired.type === "error" && expired.error.message).toMatch(/expired/);
      // The admin-only subject: a permissions violation for the shell identity, no session.
      await expect(nc.request(AUTH_SUBJECTS.issue, encode({ type: "issue", user: "root" }), { timeout: 3000 })).rejects.toThrow(/permission|timeout|no responders/i);
    } finally {
      await nc.close();
    }
  });

  it("userdel ends the user's sessions and logins; the home stays", async () => {
    const made = await cluster.sh("useradd --password-stdin dave <<< dave-pw && id dave");
    expect(made.status, made.stderr).toBe(0);
    expect((await as("dave", "dave-pw", "whoami")).stdout).toBe("dave\n");
    expect((await cluster.sh("userdel dave; id dave; echo rc=$?; ls -d /home/dave")).stdout).toMatch(/rc=1\n\/home\/dave\n/);
    expect((await as("dave", "dave-pw", "whoami")).status).not.toBe(0);
    const lines = await audit();
    expect(lines.some((l) => l.event === "userdel" && l.name === "dave")).toBe(true);
  });
});
