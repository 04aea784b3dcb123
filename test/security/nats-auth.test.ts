import { readFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, nkeyAuthenticator, nkeys, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { AUTH_SUBJECTS, BUCKETS, connectNats, loadCredentials, nodeSubject, type NatsCredentials } from "../../pseudokernel/index.js";
import { startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";

/**
 * Issue #8, NATS part: on the local test cluster every connection is TLS and authenticated, and the
 * shell identity has only the permissions it needs. Each refusal is paired with the same operation
 * succeeding for an identity that may do it, so a refusal for another reason would fail the test.
 */
let cluster: TestCluster;
let url: string;
let shellCreds: NatsCredentials;
const open: NatsConnection[] = [];

beforeAll(async () => {
  cluster = await startTestCluster();
  url = (await cluster.status())[0]!.nats;
  shellCreds = await loadCredentials(cluster.credentialsFile("shell"));
}, 180_000);

afterAll(async () => {
  await Promise.all(open.map((nc) => nc.close().catch(() => undefined)));
  await cluster?.close();
}, 60_000);

async function as(identity: string): Promise<NatsConnection> {
  const nc = await cluster.connect(identity);
  open.push(nc);
  return nc;
}

/** Permission violations the server reports on `nc` from now on (nats.js surfaces them as status events). */
function violations(nc: NatsConnection): { operation: string; subject: string }[] {
  const seen: { operation: string; subject: string }[] = [];
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "error" && status.error.name === "PermissionViolationError") {
        const e = status.error as Error & { operation: string; subject: string };
        seen.push({ operation: e.operation, subject: e.subject });
      }
    }
  })();
  return seen;
}

/** Messages a subscription received within a short wait after a flush round trip. */
async function received(nc: NatsConnection, subject: string, send: () => Promise<void>): Promise<string[]> {
  const got: string[] = [];
  const sub = nc.subscribe(subject, { callback: (err, msg) => err === null && got.push(msg.string()) });
  await nc.flush();
  await send();
  await new Promise((r) => setTimeout(r, 300));
  sub.unsubscribe();
  return got;
}

describe("authentication", () => {
  it("a client with the cluster's CA but no credentials is refused", async () => {
    const ca = (await readFile(cluster.credentialsFile("shell"), "utf8")).match(/"ca": (".*")/)![1]!;
    const error = await connect({ servers: url, tls: { ca: JSON.parse(ca) as string }, reconnect: false }).then(
      (nc) => nc.close().then(() => null),
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/authorization/i);
    // The same connection with the shell's nkey is admitted: the refusal was for the missing credentials.
    const ok = await connectNats({ servers: url, credentials: shellCreds, reconnect: false });
    await ok.close();
  });

  it("an nkey the servers do not know is refused", async () => {
    const stranger = new TextDecoder().decode(nkeys.createUser().getSeed());
    const error = await connectNats({ servers: url, credentials: { ...shellCreds, identity: "shell", seed: stranger }, reconnect: false }).then(
      (nc) => nc.close().then(() => null),
      (e: Error) => e,
    );
    expect(error).not.toBeNull();
    expect((error as { code?: string }).code).toBe("EACCES");
    expect(error?.message).toMatch(/authorization/i);
  });

  it("plain-text connections are refused, even with a valid nkey", async () => {
    // nats.js: tls null = never use TLS. The server requires it.
    const error = await connect({ servers: url, tls: null, authenticator: nkeyAuthenticator(new TextEncoder().encode(shellCreds.seed)), reconnect: false }).then(
      (nc) => nc.close().then(() => null),
      (e: Error) => e,
    );
    expect(error).not.toBeNull();
    // A raw client that speaks the protocol in plain text: the server announces TLS and never answers PONG.
    const port = Number(new URL(url).port);
    const transcript = await new Promise<string>((resolve) => {
      let text = "";
      const socket = tcpConnect({ port, host: "127.0.0.1" });
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1");
        if (text.includes("INFO ") && !text.includes("sent")) {
          text += "sent";
          socket.write('CONNECT {"verbose":false,"pedantic":false,"name":"plain"}\r\nPING\r\n');
        }
      });
      socket.on("error", () => undefined);
      socket.on("close", () => resolve(text));
      setTimeout(() => {
        socket.destroy();
        resolve(text);
      }, 3000);
    });
    expect(transcript).toMatch(/"tls_required":true/);
    expect(transcript).not.toMatch(/PONG/);
  });

  it("routes between the servers are TLS with verified certificates, and clients authenticate with nkeys", async () => {
    const config = await readFile(`${cluster.home}/cluster/n1/nats/nats-server.conf`, "utf8");
    expect(config).toMatch(/authorization \{/);
    expect(config).toMatch(/cluster \{[\s\S]*tls \{[\s\S]*verify: true/);
    expect(config).not.toMatch(/password|"S[A-Z0-9]{20,}/); // public keys only: no secret in the config
  });
});

describe("the shell identity", () => {
  it("cannot subscribe to another node's kernel subjects; admin can", async () => {
    const shell = await as("shell");
    const admin = await as("admin");
    const refused = violations(shell);
    const subject = nodeSubject("n2", "spawn");
    const publisher = await as("admin");
    const shellGot = await received(shell, subject, async () => {
      publisher.publish(subject, "probe from the security test");
      await publisher.flush();
    });
    expect(refused).toContainEqual({ operation: "subscription", subject });
    expect(shellGot).toEqual([]);
    const adminGot = await received(admin, subject, async () => {
      publisher.publish(subject, "probe from the security test");
      await publisher.flush();
    });
    expect(adminGot).toEqual(["probe from the security test"]);
    // Wider wildcards are refused too.
    for (const wide of ["oneos.node.>", "oneos.auth.>", "oneos.audit.>", ">"]) {
      shell.subscribe(wide);
      await shell.flush();
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const wide of ["oneos.node.>", "oneos.auth.>", "oneos.audit.>", ">"]) {
      expect(refused).toContainEqual({ operation: "subscription", subject: wide });
    }
  });

  it("cannot read the users bucket; admin can", async () => {
    const shell = await as("shell");
    const admin = await as("admin");
    // The runtimes make the bucket at start; a build without the users service still gets one to guard.
    const kvm = new Kvm(admin);
    const adminUsers = await kvm
      .open(BUCKETS.users, { bindOnly: true })
      .then(async (kv) => (await kv.status(), kv))
      .catch(() => kvm.create(BUCKETS.users, { history: 1 }));
    await expect(adminUsers.status()).resolves.toMatchObject({ bucket: BUCKETS.users });
    await expect(adminUsers.get("root")).resolves.toBeDefined(); // an entry or null: either way, answered

    const refused = violations(shell);
    const users = await new Kvm(shell).open(BUCKETS.users, { bindOnly: true });
    await expect(users.get("root")).rejects.toThrow();
    await expect(users.status()).rejects.toThrow();
    await expect((async () => (await users.watch()).stop())()).rejects.toThrow();
    expect(refused.some((v) => v.operation === "publish" && v.subject.includes(`KV_${BUCKETS.users}`))).toBe(true);
    // Writing a user record directly is refused as well.
    shell.publish(`$KV.${BUCKETS.users}.mallory`, "x");
    await shell.flush();
    await new Promise((r) => setTimeout(r, 200));
    expect(refused).toContainEqual({ operation: "publish", subject: `$KV.${BUCKETS.users}.mallory` });
  });

  it("cannot publish oneos.auth.issue; admin can", async () => {
    const shell = await as("shell");
    const admin = await as("admin");
    const refused = violations(shell);
    // A listener of our own (admin) sees what reaches the subject; the body is junk the auth service drops.
    const fromShell = await received(admin, AUTH_SUBJECTS.issue, async () => {
      shell.publish(AUTH_SUBJECTS.issue, "probe from the shell");
      await shell.flush();
    });
    expect(fromShell).toEqual([]);
    expect(refused).toContainEqual({ operation: "publish", subject: AUTH_SUBJECTS.issue });
    const fromAdmin = await received(admin, AUTH_SUBJECTS.issue, async () => {
      admin.publish(AUTH_SUBJECTS.issue, "probe from admin");
      await admin.flush();
    });
    expect(fromAdmin).toEqual(["probe from admin"]);
  });

  it("still runs what the shell runs: a remote command, a pipe across nodes, ps", async () => {
    const r = await cluster.sh("echo hello | @n2 cat | @n3 tr a-z A-Z; @n1 true && echo ok");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("HELLO\nok\n");
  }, 60_000);
});
