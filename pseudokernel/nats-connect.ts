import { createPrivateKey, sign, type KeyObject } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { connect, createInbox, nkeyAuthenticator, nkeys, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { KernelError } from "./errors.js";

/**
 * One NATS identity's credentials: its nkey seed (the private half; the servers know only the public
 * key) and the cluster CA's certificate, so that one file is all a machine needs to join.
 *
 * File format (JSON, mode 0600): `{ "version": 1, "identity": "node-n2", "seed": "SU...", "nkey": "U...", "ca": "-----BEGIN CERTIFICATE-----..." }`
 * (`nkey`, the public key, is optional: files without it connect too, 30–40 ms slower).
 */
export interface NatsCredentials {
  /** `admin`, `shell`, `desktop` or `node-<name>`. */
  readonly identity: string;
  /** The nkey user seed (`SU...`). */
  readonly seed: string;
  /** Its public key (`U...`), when the file carries it: saves deriving it in JavaScript at each connect. */
  readonly nkey?: string;
  /** PEM of the CA that signed the servers' certificates. */
  readonly ca: string;
}

/** Identities are subject tokens in inbox prefixes: the node-name alphabet. */
const IDENTITY_PATTERN = /^[A-Za-z0-9_-]{1,70}$/;

/** Parses and checks a credentials file's text; a damaged file fails here, not at the server. */
export function parseCredentials(text: string, source = "credentials"): NatsCredentials {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new KernelError("EINVAL", `${source}: not a oneos credentials file (not JSON)`, { cause: error });
  }
  const o = value as Record<string, unknown> | null;
  const identity = o?.["identity"];
  const seed = o?.["seed"];
  const ca = o?.["ca"];
  if (o === null || typeof o !== "object" || o["version"] !== 1) throw new KernelError("EINVAL", `${source}: not a oneos credentials file (version 1)`);
  if (typeof identity !== "string" || !IDENTITY_PATTERN.test(identity)) throw new KernelError("EINVAL", `${source}: bad identity`);
  if (typeof seed !== "string" || !seed.startsWith("SU")) throw new KernelError("EINVAL", `${source}: bad nkey seed (expected a user seed SU...)`);
  try {
    nkeys.fromSeed(new TextEncoder().encode(seed));
  } catch (error) {
    throw new KernelError("EINVAL", `${source}: bad nkey seed`, { cause: error });
  }
  if (typeof ca !== "string" || !ca.includes("BEGIN CERTIFICATE")) throw new KernelError("EINVAL", `${source}: bad CA certificate`);
  const nkey = o["nkey"];
  if (nkey !== undefined && (typeof nkey !== "string" || !/^U[A-Z2-7]{55}$/.test(nkey))) throw new KernelError("EINVAL", `${source}: bad nkey public key`);
  return { identity, seed, ca, ...(nkey !== undefined ? { nkey } : {}) };
}

/**
 * Reads a credentials file. Like ssh with a private key, refuses one that others may read: the seed
 * is the identity.
 *
 * @example
 * const creds = await loadCredentials("/root/.oneos/cluster/credentials/shell.creds");
 */
export async function loadCredentials(path: string): Promise<NatsCredentials> {
  let text: string;
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0) {
      throw new KernelError("EACCES", `${path}: credentials readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`);
    }
    text = await readFile(path, "utf8");
  } catch (error) {
    if (error instanceof KernelError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new KernelError(code === "ENOENT" ? "ENOENT" : "EACCES", `cannot read credentials ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseCredentials(text, path);
}

/** PKCS #8 DER of an Ed25519 private key, up to its 32-byte seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/**
 * nats.js's nkey authenticator, signing the server's nonce with Node's own Ed25519 instead of
 * tweetnacl: the same signature, without the 30–40 ms tweetnacl takes to derive the key pair in a
 * fresh process (a CLI call's largest single cost). The public key comes from the credentials file.
 */
export function nativeNkeyAuthenticator(seed: string, nkey: string): (nonce?: string) => { nkey: string; sig: string } {
  let key: KeyObject | undefined;
  return (nonce) => {
    key ??= createPrivateKey({
      key: Buffer.concat([ED25519_PKCS8_PREFIX, rawSeed(seed)]),
      format: "der",
      type: "pkcs8",
    });
    const sig = nonce === undefined ? "" : nkeys.encode(sign(null, Buffer.from(nonce), key));
    return { nkey, sig };
  };
}

/** The 32 bytes of an nkey seed: base32 (RFC 4648, unpadded) of 2 prefix bytes, the seed and a CRC-16. */
function rawSeed(seed: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of seed) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(bytes.slice(2, 34));
}

/**
 * The inbox prefix of an identity. Replies to an identity arrive under its own prefix, so a
 * subscription permission can keep one identity from reading another's replies (a runtime's reads of
 * the users bucket, a token `auth.issue` hands to admin). Shells keep nats.js's default `_INBOX`, and
 * have process events sent under it (`notifyInbox`).
 */
export function inboxPrefixOf(identity: string): string {
  if (identity === "shell") return "_INBOX";
  if (identity.startsWith("node-")) return `_INBOX_nodes.${identity.slice("node-".length)}`;
  return `_INBOX_${identity}`;
}

/** Where a shell has a runtime send a process's events (`notify`): the only inboxes a runtime sends users' events to. */
export function notifyInbox(): string {
  return createInbox(`${inboxPrefixOf("shell")}.oneos`);
}

export interface ConnectNatsOptions extends Omit<ConnectionOptions, "authenticator" | "tls" | "inboxPrefix" | "user" | "pass" | "token"> {
  /** Without credentials the connection is plain and anonymous (test servers started without auth). */
  readonly credentials?: NatsCredentials | undefined;
}

/**
 * Connects to NATS as an identity: nkey authentication (the seed signs the server's nonce, never
 * travels) and TLS verified against the cluster's CA, with the identity's inbox prefix.
 * Refusals come back as KernelErrors: `EACCES` for authentication, `EIO` otherwise.
 *
 * @example
 * const nc = await connectNats({ servers: "nats://127.0.0.1:4222", name: "ps", credentials: await loadCredentials(file) });
 */
export async function connectNats(options: ConnectNatsOptions): Promise<NatsConnection> {
  const { credentials, ...given } = options;
  // Without this, nats.js makes an Error (a stack trace) for every request in case it times out: a
  // sixteenth of the CloudFS daemon's time while it creates small files. Our errors say what timed out.
  const rest: ConnectionOptions = { noAsyncTraces: true, ...given };
  const secured: ConnectionOptions =
    credentials === undefined
      ? rest
      : {
          ...rest,
          authenticator: credentials.nkey !== undefined ? nativeNkeyAuthenticator(credentials.seed, credentials.nkey) : nkeyAuthenticator(new TextEncoder().encode(credentials.seed)),
          tls: { ca: credentials.ca },
          inboxPrefix: inboxPrefixOf(credentials.identity),
        };
  try {
    return await connect(secured);
  } catch (error) {
    const text = (error as Error).message;
    const auth = /authoriz|authenticat|permission/i.test(text);
    const where = Array.isArray(options.servers) ? options.servers.join(", ") : (options.servers ?? "");
    throw new KernelError(auth ? "EACCES" : "EIO", `cannot connect to NATS at ${where}${credentials !== undefined ? ` as ${credentials.identity}` : ""}: ${text}`, { cause: error });
  }
}
