import type { NatsConnection } from "@nats-io/transport-node";
import { KernelClient, KernelError, USER_NAME_PATTERN, type NatsCredentials, type Session, type UserInfo } from "../../pseudokernel/index.js";
import type { Cred } from "../../vfs-fuse/index.js";
import { SESSION_CHECK_MS } from "./limits.js";

/** What the login page may say about a failed login: nothing about which part was wrong. */
export type LoginRefusal = "incorrect" | "unavailable";

/** A failed login, as the page shows it (the cause stays on the server). */
export class LoginRefused extends Error {
  override readonly name = "LoginRefused";
  readonly reason: LoginRefusal;
  constructor(reason: LoginRefusal, options?: { cause?: unknown }) {
    super(reason === "incorrect" ? "login incorrect" : "the cluster did not answer: try again in a moment", options);
    this.reason = reason;
  }
}

/** Only a time-out or a transport failure is worth another try; everything else reads "login incorrect". */
function refusalOf(error: unknown): LoginRefused {
  const code = error instanceof KernelError ? error.code : "EIO";
  return new LoginRefused(code === "ETIMEDOUT" || code === "EIO" || code === "ENONODE" ? "unavailable" : "incorrect", { cause: error });
}

/**
 * One browser login's side of the cluster: the user's session and the KernelClient its kernel requests
 * go out through. Each login has its own KernelClient (sharing the desktop's NATS connection), so the
 * `Oneos-Session` header of a request is always its own user's, however many users act at once.
 *
 * @example
 * const login = await ClusterLogin.login(nc, "alice", password);
 * await login.kernel.signal(pid, "TERM"); // as alice: EPERM for bob's processes
 */
export class ClusterLogin {
  /** Never close it: it shares the desktop's connection. */
  readonly kernel: KernelClient;
  #checkedAt: number;
  #refreshing: Promise<void> | undefined;
  /** Set when the runtimes refuse a refresh: the user is gone or their password changed. */
  #refused = false;

  private constructor(kernel: KernelClient, session: Session, now: number) {
    this.kernel = kernel;
    this.kernel.session = session;
    this.#checkedAt = now;
  }

  /** The login's session: the one its KernelClient sends (a refresh replaces it there). */
  get #session(): Session {
    return this.kernel.session!;
  }

  /** Logs `user` in with `password`; LoginRefused("incorrect") for any wrong part, saying no more. */
  static async login(nc: NatsConnection, user: string, password: string): Promise<ClusterLogin> {
    // The runtimes would refuse a malformed name too, but with a message that names the problem.
    if (!USER_NAME_PATTERN.test(user) || password.length === 0 || password.length > 1024) throw new LoginRefused("incorrect");
    const kernel = await KernelClient.fromConnection(nc);
    try {
      const session = await kernel.startSession({ type: "login", user, password });
      return new ClusterLogin(kernel, session, Date.now());
    } catch (error) {
      throw refusalOf(error);
    }
  }

  /**
   * A root session `issue`d through the admin identity (the owner's URL token). The admin connection
   * lives only for this one request: the desktop keeps no admin identity around.
   */
  static async issueRoot(nc: NatsConnection, natsUrl: string, admin: NatsCredentials): Promise<ClusterLogin> {
    let session: Session;
    try {
      session = await KernelClient.issueSession(natsUrl, admin, "root");
    } catch (error) {
      throw refusalOf(error);
    }
    return new ClusterLogin(await KernelClient.fromConnection(nc), session, Date.now());
  }

  get user(): UserInfo {
    return this.#session.user;
  }

  /** The session token, for the shells this login's terminals run (`$ONEOS_SESSION`). */
  get token(): string {
    return this.#session.token;
  }

  /** Whose modes CloudFS checks for this login's Files window (each user has a group of their own). */
  get cred(): Cred {
    return { uid: this.#session.user.uid, gid: this.#session.user.gid };
  }

  /** True once the session is over: expired, or refused at its last refresh. */
  expired(now = Date.now()): boolean {
    return this.#refused || this.#session.exp <= now;
  }

  /**
   * Called on each use of the login: past SESSION_CHECK_MS since the last check, or with less than
   * half its life left, the session is refreshed in the background (one refresh at a time). A refusal
   * ends the login; a cluster that does not answer leaves it as it is until the next use.
   */
  keepFresh(now = Date.now()): void {
    if (this.#refreshing !== undefined || this.expired(now)) return;
    const halfLeft = this.#session.exp - now < (this.#session.exp - this.#checkedAt) / 2;
    if (now - this.#checkedAt < SESSION_CHECK_MS && !halfLeft) return;
    this.#refreshing = this.kernel
      .refreshSession()
      .then(
        () => {
          this.#checkedAt = Date.now();
        },
        (error: unknown) => {
          if (error instanceof KernelError && error.code === "EPERM") this.#refused = true;
        },
      )
      .finally(() => (this.#refreshing = undefined));
  }

}
