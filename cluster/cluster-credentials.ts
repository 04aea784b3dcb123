import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { nkeys } from "@nats-io/transport-node";
import { KernelError, parseCredentials, type NatsCredentials } from "../pseudokernel/index.js";
import { permissionsOf, type SubjectPermissions } from "./nats-permissions.js";

const exec = promisify(execFile);

/** The identities every cluster has besides its nodes. */
export const CLIENT_IDENTITIES = ["admin", "shell", "desktop"] as const;

/** Certificates outlive any test cluster; a real deployment re-issues them with its own tooling. */
const CA_DAYS = 3650;
const SERVER_CERT_DAYS = 825;

/** What a nats-server needs to run secured: its TLS files and the users it admits. */
export interface NatsSecurity {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly users: readonly { readonly identity: string; readonly nkey: string; readonly permissions: SubjectPermissions }[];
}

export function nodeIdentity(name: string): string {
  return `node-${name}`;
}

/** The credentials file of `identity` in a credentials directory. */
export function credentialsFile(dir: string, identity: string): string {
  return join(dir, `${identity}.creds`);
}

/**
 * Makes, once, what a secured cluster needs in `dir` (mode 0700; every file 0600): a CA, a server
 * certificate for 127.0.0.1/localhost (and `hosts`) signed by it, and one credentials file (nkey seed +
 * CA) per identity: admin, shell, desktop and `node-<name>` for each of `nodes`. What exists is kept,
 * so restarts keep every identity; a new node name only adds its file. Every `node-*.creds` in `dir`
 * is admitted, so a node that joined later (`oneos node`) keeps its place across restarts.
 *
 * @example
 * const security = await ensureClusterCredentials("/root/.oneos/cluster/credentials", ["n1", "n2", "n3"]);
 */
export async function ensureClusterCredentials(
  dir: string,
  nodes: readonly string[],
  options: { readonly hosts?: readonly string[] } = {},
): Promise<NatsSecurity> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const caFile = join(dir, "ca.pem");
  const caKey = join(dir, "ca-key.pem");
  const certFile = join(dir, "server-cert.pem");
  const keyFile = join(dir, "server-key.pem");
  if (!(await exists(caFile)) || !(await exists(caKey))) await makeCa(caFile, caKey);
  if (!(await exists(certFile)) || !(await exists(keyFile))) {
    await issueServerCert({ caFile, caKey, certFile, keyFile, hosts: ["127.0.0.1", "localhost", ...(options.hosts ?? [])] });
  }
  const ca = await readFile(caFile, "utf8");
  const users: NatsSecurity["users"][number][] = [];
  const known = (await readdir(dir)).flatMap((f) => (/^node-[A-Za-z0-9_-]+\.creds$/.test(f) ? [f.slice(0, -".creds".length)] : []));
  for (const identity of new Set([...CLIENT_IDENTITIES, ...nodes.map(nodeIdentity), ...known])) {
    const creds = await ensureIdentity(dir, identity, ca);
    const nkey = creds.nkey ?? nkeys.fromSeed(new TextEncoder().encode(creds.seed)).getPublicKey();
    users.push({ identity, nkey, permissions: permissionsOf(identity) });
  }
  return { caFile, certFile, keyFile, users };
}

/** The credentials of `identity` in `dir`, made (a fresh nkey) when missing or made for another CA. */
export async function ensureIdentity(dir: string, identity: string, ca: string): Promise<NatsCredentials> {
  const path = credentialsFile(dir, identity);
  const existing = await readFile(path, "utf8").catch(() => null);
  if (existing !== null) {
    const creds = parseCredentials(existing, path);
    // A file made with an older CA would be refused by the servers: re-issue against the current one.
    // One without its public key gets it added (clients connect faster with it), the same identity.
    if (creds.ca === ca && creds.identity === identity) {
      if (creds.nkey !== undefined) return creds;
      const withKey: NatsCredentials = { ...creds, nkey: nkeys.fromSeed(new TextEncoder().encode(creds.seed)).getPublicKey() };
      await writePrivate(path, JSON.stringify({ version: 1, ...withKey }, null, 2) + "\n");
      return withKey;
    }
  }
  const pair = nkeys.createUser();
  const seed = new TextDecoder().decode(pair.getSeed());
  const creds: NatsCredentials = { identity, seed, nkey: pair.getPublicKey(), ca };
  await writePrivate(path, JSON.stringify({ version: 1, ...creds }, null, 2) + "\n");
  return creds;
}

async function makeCa(caFile: string, caKey: string): Promise<void> {
  await openssl([
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", caKey, "-out", caFile, "-days", String(CA_DAYS), "-subj", "/CN=oneos cluster CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await chmod(caKey, 0o600);
  await chmod(caFile, 0o600);
}

/**
 * Signs a certificate for nats-servers on `hosts` (IP addresses or DNS names) with the cluster CA. It
 * serves clients and routes alike (serverAuth + clientAuth): routes present it to each other.
 */
export async function issueServerCert(options: {
  readonly caFile: string;
  readonly caKey: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly hosts: readonly string[];
}): Promise<void> {
  const names = options.hosts.map((h) => (/^[0-9.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`));
  const tmp = `${options.certFile}.${randomBytes(4).toString("hex")}`;
  const ext = `${tmp}.ext`;
  const csr = `${tmp}.csr`;
  try {
    await writePrivate(
      ext,
      [`subjectAltName=${names.join(",")}`, "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment", "extendedKeyUsage=serverAuth,clientAuth"].join("\n") + "\n",
    );
    await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${tmp}.key`, "-out", csr, "-subj", "/CN=oneos nats-server"]);
    await openssl([
      "x509", "-req", "-in", csr, "-CA", options.caFile, "-CAkey", options.caKey, "-set_serial", `0x${randomBytes(16).toString("hex")}`,
      "-out", tmp, "-days", String(SERVER_CERT_DAYS), "-extfile", ext,
    ]);
    await chmod(`${tmp}.key`, 0o600);
    await chmod(tmp, 0o600);
    await rename(`${tmp}.key`, options.keyFile);
    await rename(tmp, options.certFile);
  } finally {
    await Promise.all([ext, csr, tmp, `${tmp}.key`].map((f) => rm(f, { force: true })));
  }
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await exec("openssl", args as string[], { timeout: 30_000 });
  } catch (error) {
    const text = (error as { stderr?: string }).stderr ?? (error as Error).message;
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    throw new KernelError("EIO", missing ? "openssl is not installed (apt-get install openssl)" : `openssl ${args[0]}: ${text.trim()}`, { cause: error });
  }
}

async function writePrivate(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

async function exists(path: string): Promise<boolean> {
  return await readFile(path).then(
    () => true,
    () => false,
  );
}
