import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  AUTH_SUBJECTS,
  authSubject,
  decode,
  KernelError,
  MAX_SESSION_MS,
  parseAuthRequest,
  replyTo,
  ROOT_USER,
  SESSION_HEADER,
  signSession,
  toWireError,
  verifySession,
  type AuthReply,
  type AuthRequest,
  type SessionClaims,
  type UserInfo,
} from "../../pseudokernel/index.js";
import { AuditLog } from "./audit.js";
import { UserStore, type StoredUser } from "./user-store.js";

/** Who a kernel request comes from, as its session token proves. */
export type Caller = SessionClaims;

/** Root may signal, attach to, resize and read any process; anyone else only their own. */
export function canControl(caller: Caller, owner: string): boolean {
  return caller.uid === 0 || caller.user === owner;
}

/** `canControl`, as the kernel answers it: EPERM. */
export function mayControl(caller: Caller, pid: number, owner: string): void {
  if (!canControl(caller, owner)) throw new KernelError("EPERM", `(${pid}) - Operation not permitted`);
}

export interface AuthServiceOptions {
  readonly nc: NatsConnection;
  readonly users: UserStore;
  readonly audit: AuditLog;
  readonly logger: Logger;
  /** Makes a new user's home directory in CloudFS (mode 0700, theirs). */
  readonly makeHome: (user: UserInfo) => Promise<void>;
}

/** After this many failed logins of one name within a minute, each further try waits a second more. */
const FAILURES_BEFORE_DELAY = 5;

/**
 * The users-and-sessions service every runtime runs (queue group: one answers): logins, session
 * refresh, useradd/userdel/passwd, and the check of the session token on every kernel request.
 */
export class AuthService {
  #o: AuthServiceOptions;
  #subscriptions: Subscription[] = [];
  #failures = new Map<string, { count: number; since: number }>();

  constructor(options: AuthServiceOptions) {
    this.#o = options;
    for (const subject of Object.values(AUTH_SUBJECTS)) {
      this.#subscriptions.push(
        options.nc.subscribe(subject, {
          queue: "oneos-auth",
          callback: (err, msg) => {
            if (err === null) void this.#serve(msg);
          },
        }),
      );
    }
  }

  /** The caller of a kernel request: a valid, unexpired session of a user that still exists (EPERM otherwise). */
  async caller(msg: Msg): Promise<Caller> {
    const claims = verifySession(this.#o.users.secret, msg.headers?.get(SESSION_HEADER));
    if (claims.uid === 0 && claims.user === "root" && claims.gen === 0) return claims;
    const user = await this.#o.users.get(claims.user);
    if (user === undefined || user.uid !== claims.uid) throw new KernelError("EPERM", `session of '${claims.user}': no such user any more`);
    if (user.gen !== claims.gen) throw new KernelError("EPERM", "session ended by a password change: log in again");
    return claims;
  }

  /**
   * A short session for the cluster user with this uid, for a request the runtime makes on behalf of
   * one of its processes running as them (a kill(2) it relays); undefined if no cluster user has it.
   */
  async sessionForUid(uid: number, ttlMs = 10_000): Promise<string | undefined> {
    if (uid === 0) return this.rootSession(ttlMs);
    const info = this.#o.users.list().find((u) => u.uid === uid);
    const user = info === undefined ? undefined : await this.#o.users.get(info.name);
    if (user === undefined) return undefined;
    return signSession(this.#o.users.secret, { user: user.name, uid: user.uid, gid: user.gid, home: user.home, exp: Date.now() + ttlMs, gen: user.gen });
  }

  /** A root session for the runtime's own requests (the services controller's spawns and kills). */
  rootSession(ttlMs = MAX_SESSION_MS): string {
    return signSession(this.#o.users.secret, { ...ROOT_USER, exp: Date.now() + ttlMs, gen: 0 });
  }

  close(): void {
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#o.users.close();
  }

  async #serve(msg: Msg): Promise<void> {
    let reply: AuthReply;
    try {
      const request = parseAuthRequest(decode(msg.data));
      if (msg.subject !== authSubject(request.type)) throw new KernelError("EBADMSG", `a ${request.type} request on ${msg.subject}`);
      reply = await this.#answer(request, msg);
    } catch (error) {
      if (!(error instanceof KernelError)) this.#o.logger.warn({ err: error }, "auth request failed");
      reply = { type: "error", error: toWireError(error) };
    }
    replyTo(msg, reply);
  }

  async #answer(request: AuthRequest, msg: Msg): Promise<AuthReply> {
    const { users, audit } = this.#o;
    switch (request.type) {
      case "login": {
        await this.#slowDown(request.user);
        const user = await users.authenticate(request.user, request.password);
        if (user === undefined) {
          this.#failed(request.user);
          audit.write({ event: "login-failed", user: request.user });
          throw new KernelError("EPERM", "login incorrect");
        }
        this.#failures.delete(request.user);
        audit.write({ event: "login", user: user.name });
        return this.#session(user, request.ttlMs);
      }
      case "issue": {
        const user = await users.get(request.user);
        if (user === undefined) throw new KernelError("ENOENT", `no user '${request.user}'`);
        audit.write({ event: "login", user: user.name, via: "issue" });
        return this.#session(user, request.ttlMs);
      }
      case "refresh": {
        const caller = await this.caller(msg);
        const user = await users.get(caller.user);
        if (user === undefined) throw new KernelError("EPERM", "no such user any more");
        return this.#session(user, undefined);
      }
      case "users": {
        if (request.name !== undefined) {
          await this.caller(msg);
          const user = await users.get(request.name);
          if (user === undefined) throw new KernelError("ENOENT", `no user '${request.name}'`);
          return { type: "users", users: [info(user)] };
        }
        await this.#root(msg, "users");
        return { type: "users", users: users.list() };
      }
      case "useradd": {
        const caller = await this.#root(msg, "useradd");
        const user = await users.add(request.name, request.password);
        await this.#o.makeHome(info(user)).catch((error: unknown) => this.#o.logger.warn({ err: String(error), user: user.name }, "home not made"));
        audit.write({ event: "useradd", user: caller.user, name: user.name, uid: user.uid });
        return { type: "users", users: [info(user)] };
      }
      case "userdel": {
        const caller = await this.#root(msg, "userdel");
        const user = await users.remove(request.name);
        audit.write({ event: "userdel", user: caller.user, name: user.name, uid: user.uid });
        return { type: "done" };
      }
      case "passwd": {
        const caller = await this.caller(msg);
        if (caller.uid !== 0) {
          if (caller.user !== request.name) throw new KernelError("EPERM", `passwd: you may not change the password of '${request.name}'`);
          const ok = request.old !== undefined && (await users.authenticate(request.name, request.old)) !== undefined;
          if (!ok) {
            audit.write({ event: "passwd", user: caller.user, name: request.name, ok: false });
            throw new KernelError("EPERM", "passwd: authentication token manipulation error (wrong current password)");
          }
        }
        await users.setPassword(request.name, request.password);
        audit.write({ event: "passwd", user: caller.user, name: request.name, ok: true });
        // The change ends the user's sessions — but not the one that made it: it gets a fresh one.
        if (caller.user === request.name) {
          const user = await users.get(request.name);
          if (user !== undefined) return this.#session(user, undefined);
        }
        return { type: "done" };
      }
    }
  }

  async #root(msg: Msg, what: string): Promise<Caller> {
    const caller = await this.caller(msg);
    if (caller.uid !== 0) throw new KernelError("EPERM", `${what}: only root may do this`);
    return caller;
  }

  #session(user: StoredUser, ttlMs: number | undefined): AuthReply {
    const exp = Date.now() + Math.min(ttlMs ?? MAX_SESSION_MS, MAX_SESSION_MS);
    const token = signSession(this.#o.users.secret, { user: user.name, uid: user.uid, gid: user.gid, home: user.home, exp, gen: user.gen });
    return { type: "session", token, exp, user: info(user) };
  }

  #failed(name: string): void {
    const now = Date.now();
    const f = this.#failures.get(name);
    if (f === undefined || now - f.since > 60_000) this.#failures.set(name, { count: 1, since: now });
    else f.count++;
    if (this.#failures.size > 10_000) this.#failures.delete(this.#failures.keys().next().value!);
  }

  async #slowDown(name: string): Promise<void> {
    const f = this.#failures.get(name);
    if (f === undefined || Date.now() - f.since > 60_000 || f.count < FAILURES_BEFORE_DELAY) return;
    await new Promise((r) => setTimeout(r, Math.min(10, f.count - FAILURES_BEFORE_DELAY + 1) * 1000));
  }
}

function info(user: UserInfo): UserInfo {
  return { name: user.name, uid: user.uid, gid: user.gid, home: user.home };
}
