import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { BUCKETS, decode, encode, followBucket, KernelError, openBucket, ROOT_USER, type UserInfo } from "../../pseudokernel/index.js";

/** A user as the users bucket keeps it. */
export interface StoredUser extends UserInfo {
  /** `scrypt$N$r$p$salt$hash` (base64url), or null: no password, no login (only `issue`). */
  readonly hash: string | null;
  /** Bumped by every password change: sessions made before it end. */
  readonly gen: number;
  readonly created: number;
}

/** Cluster users get uids from here up, clear of the host's own accounts (Debian: 1000…59999). */
export const FIRST_UID = 2000;
const LAST_UID = 59_999;

/** scrypt with N = 2^15, r = 8: 32 MiB and some 60 ms per guess on this machine. */
const SCRYPT: ScryptOptions = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_BYTES = 32;

function derive(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFC"), salt, KEY_BYTES, options, (error, key) => (error === null ? resolve(key) : reject(error))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, SCRYPT);
  return `scrypt$${Math.log2(SCRYPT.N!)}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

export async function checkPassword(password: string, hash: string): Promise<boolean> {
  const [kind, logN, r, p, salt, key] = hash.split("$");
  if (kind !== "scrypt" || key === undefined || salt === undefined) return false;
  const expected = Buffer.from(key, "base64url");
  const N = 2 ** Number(logN);
  const got = await derive(password, Buffer.from(salt, "base64url"), { N, r: Number(r), p: Number(p), maxmem: 256 * N * Number(r) + 1024 * 1024 });
  return got.length === expected.length && timingSafeEqual(got, expected);
}

function parseStored(value: Uint8Array): StoredUser | undefined {
  try {
    const o = decode(value) as StoredUser;
    return typeof o.name === "string" && Number.isSafeInteger(o.uid) && Number.isSafeInteger(o.gid) ? o : undefined;
  } catch {
    return undefined;
  }
}

const userKey = (name: string): string => `user.${name}`;
const uidKey = (uid: number): string => `uid.${uid}`;

/**
 * The cluster's users (bucket `oneos_users`, key `user.<name>`, uids claimed under `uid.<n>`) and the
 * session secret (bucket `oneos_auth`). Runtimes keep a replica in memory (a KV watch) so checking a
 * session costs no round trip. root (uid 0) always exists; it has a password only once one is set.
 */
export class UserStore {
  readonly secret: Uint8Array;
  #users: KV;
  #cache = new Map<string, StoredUser>();
  #watch: { stop(): void };
  #changed: NodeJS.Timeout | undefined;
  /** Called (a moment after, once per burst) when the set of users changed. */
  onChange: (() => void) | undefined;

  private constructor(users: KV, secret: Uint8Array) {
    this.#users = users;
    this.secret = secret;
    this.#watch = followBucket(
      users,
      (entry) => {
        const name = entry.key.slice("user.".length);
        const user = entry.operation === "PUT" ? parseStored(entry.value) : undefined;
        if (user === undefined) this.#cache.delete(name);
        else this.#cache.set(name, user);
        this.#changed ??= setTimeout(() => {
          this.#changed = undefined;
          this.onChange?.();
        }, 100);
      },
      "user.>",
    );
  }

  static async open(nc: NatsConnection, options: { replicas?: number } = {}): Promise<UserStore> {
    const bucketOptions = { replicas: options.replicas ?? 1 };
    const [users, auth] = await Promise.all([openBucket(nc, BUCKETS.users, bucketOptions), openBucket(nc, BUCKETS.auth, bucketOptions)]);
    return new UserStore(users, await sessionSecret(auth));
  }

  /** A user, from the replica, else from the bucket (made a moment ago on another node). */
  async get(name: string): Promise<StoredUser | undefined> {
    const cached = this.#cache.get(name);
    if (cached !== undefined) return cached;
    const entry = await this.#users.get(userKey(name));
    const stored = entry !== null && entry.operation === "PUT" ? parseStored(entry.value) : undefined;
    if (stored !== undefined) return stored;
    return name === "root" ? { ...ROOT_USER, name: "root", hash: null, gen: 0, created: 0 } : undefined;
  }

  list(): UserInfo[] {
    const out = new Map<string, UserInfo>([["root", { name: "root", uid: 0, gid: 0, home: ROOT_USER.home }]]);
    for (const u of this.#cache.values()) out.set(u.name, { name: u.name, uid: u.uid, gid: u.gid, home: u.home });
    return [...out.values()].sort((a, b) => a.uid - b.uid);
  }

  /** Creates a user with the next free uid (gid = uid: one group per user) and home `/home/<name>`. */
  async add(name: string, password: string | undefined): Promise<StoredUser> {
    if (name === "root" || (await this.get(name)) !== undefined) throw new KernelError("EEXIST", `useradd: user '${name}' already exists`);
    const hash = password === undefined ? null : await hashPassword(password);
    let uid = Math.max(FIRST_UID - 1, ...[...this.#cache.values()].map((u) => u.uid)) + 1;
    for (; uid <= LAST_UID; uid++) {
      try {
        await this.#users.create(uidKey(uid), encode(name));
        break;
      } catch {
        // taken by a racing useradd: the next one
      }
    }
    if (uid > LAST_UID) throw new KernelError("EIO", "useradd: no free uid");
    const user: StoredUser = { name, uid, gid: uid, home: `/home/${name}`, hash, gen: 1, created: Date.now() };
    try {
      await this.#users.create(userKey(name), encode(user));
    } catch (error) {
      await this.#users.delete(uidKey(uid)).catch(() => undefined);
      throw new KernelError("EEXIST", `useradd: user '${name}' already exists`, { cause: error });
    }
    this.#cache.set(name, user);
    return user;
  }

  async remove(name: string): Promise<StoredUser> {
    const user = await this.get(name);
    if (user === undefined || name === "root") throw new KernelError(name === "root" ? "EPERM" : "ENOENT", `userdel: user '${name}' does not exist${name === "root" ? " as a cluster user" : ""}`);
    await this.#users.purge(userKey(name));
    await this.#users.purge(uidKey(user.uid)).catch(() => undefined);
    this.#cache.delete(name);
    return user;
  }

  async setPassword(name: string, password: string): Promise<void> {
    const user = await this.get(name);
    if (user === undefined) throw new KernelError("ENOENT", `passwd: user '${name}' does not exist`);
    const next: StoredUser = { ...user, hash: await hashPassword(password), gen: user.gen + 1 };
    await this.#users.put(userKey(name), encode(next));
    this.#cache.set(name, next);
  }

  /** The user if the password is theirs; undefined for a wrong password, an unknown user or no password. */
  async authenticate(name: string, password: string): Promise<StoredUser | undefined> {
    const entry = await this.#users.get(userKey(name));
    const user = entry !== null && entry.operation === "PUT" ? parseStored(entry.value) : undefined;
    if (user === undefined || user.hash === null) {
      await hashPassword(password); // the same time as a real check: no user enumeration by timing
      return undefined;
    }
    return (await checkPassword(password, user.hash)) ? user : undefined;
  }

  close(): void {
    clearTimeout(this.#changed);
    this.#watch.stop();
  }
}

/** The cluster's session-signing secret: made once by the first runtime, read by the others. */
async function sessionSecret(auth: KV): Promise<Uint8Array> {
  for (let attempt = 0; ; attempt++) {
    const entry = await auth.get("secret").catch(() => null);
    if (entry !== null && entry.operation === "PUT" && entry.value.length === 32) return entry.value;
    try {
      const secret = randomBytes(32);
      await auth.create("secret", secret);
      return secret;
    } catch (error) {
      if (attempt > 40) throw new KernelError("EIO", `session secret: ${(error as Error).message}`, { cause: error });
      await new Promise((r) => setTimeout(r, 250)); // another runtime made it: read it
    }
  }
}
