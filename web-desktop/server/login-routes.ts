import type { NatsConnection } from "@nats-io/transport-node";
import express, { Router, type Request, type Response } from "express";
import type { NatsCredentials } from "../../pseudokernel/index.js";
import { ClusterLogin, LoginRefused } from "./cluster-login.js";
import { LOGIN_FORM_LIMIT, MAX_PENDING_LOGINS } from "./limits.js";
import { LOGIN_PAGE_CSP, loginPage, type LoginPageOptions } from "./login-page.js";
import { sameOrigin, type LoginSessions } from "./login-sessions.js";
import type { OwnerToken } from "./owner-token.js";

export interface LoginRoutesOptions {
  readonly login: LoginSessions<ClusterLogin>;
  /** The desktop's connection: each login's KernelClient shares it. */
  readonly nc: NatsConnection;
  readonly natsUrl: string;
  /** The owner's fast path (a URL token that logs in as root), when the desktop has the admin credentials. */
  readonly owner: { readonly token: OwnerToken; readonly admin: NatsCredentials } | null;
}

function page(res: Response, status: number, options: LoginPageOptions): void {
  res.status(status).setHeader("Content-Security-Policy", LOGIN_PAGE_CSP).setHeader("Cache-Control", "no-store");
  // Under `no-referrer` a browser posts the form with `Origin: null`; `same-origin` lets it name this
  // page, so the login CSRF check below can tell our own form from a foreign one.
  res.setHeader("Referrer-Policy", "same-origin");
  res.type("html").send(loginPage(options));
}

function field(req: Request, name: string): string {
  const body: unknown = req.body;
  const value = body !== null && typeof body === "object" ? (body as Record<string, unknown>)[name] : undefined;
  return typeof value === "string" ? value : "";
}

/**
 * Logging in: `GET /` shows the login page to a browser without a session (and takes the owner's
 * `?token=`), `POST /login` checks a cluster user's name and password with the runtimes. A login opens
 * a login session (an httpOnly, SameSite=Strict cookie) that holds the user's cluster session.
 */
export function loginRoutes(options: LoginRoutesOptions): Router {
  const { login, nc, natsUrl, owner } = options;
  const router = Router();
  let pending = 0;
  const hasToken = owner !== null;

  /** Opens the login session (ending the browser's previous one) and sends the browser to the desktop. */
  const enter = (req: Request, res: Response, user: ClusterLogin): void => {
    const previous = login.sessionOf(req);
    if (previous !== null) login.close(previous.id);
    res.setHeader("Set-Cookie", login.open(user));
    // 303: the address bar shows `/`, with no token in it or in history, and a reload does not post again.
    res.redirect(303, "/");
  };

  /** Runs one login attempt against the cluster, at most MAX_PENDING_LOGINS at once. */
  const attempt = async (res: Response, form: { user: string }, run: () => Promise<ClusterLogin>): Promise<ClusterLogin | null> => {
    if (pending >= MAX_PENDING_LOGINS) {
      page(res, 429, { message: "Too many logins at once: try again in a moment.", user: form.user, ownerToken: hasToken });
      return null;
    }
    pending++;
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof LoginRefused)) throw error;
      page(res, error.reason === "incorrect" ? 401 : 503, { message: error.message, user: form.user, ownerToken: hasToken });
      return null;
    } finally {
      pending--;
    }
  };

  router.get("/", async (req, res, next) => {
    const token = (req.query as Record<string, unknown>)["token"];
    if (token !== undefined) {
      if (owner === null || !owner.token.matches(token)) {
        page(res, 401, { message: owner === null ? "This desktop has no token login: log in with your user name." : "That token is not valid for this desktop.", ownerToken: hasToken });
        return;
      }
      const root = await attempt(res, { user: "" }, () => ClusterLogin.issueRoot(nc, natsUrl, owner.admin));
      if (root !== null) enter(req, res, root);
      return;
    }
    if (login.sessionOf(req) === null) {
      page(res, 401, { message: null, ownerToken: hasToken });
      return;
    }
    next();
  });

  router.post("/login", express.urlencoded({ extended: false, limit: LOGIN_FORM_LIMIT }), async (req, res) => {
    // A foreign page must not log this browser in as someone else (login CSRF).
    if (req.headers.origin !== undefined && !sameOrigin(req)) {
      page(res, 403, { message: "Cross-origin login refused.", ownerToken: hasToken });
      return;
    }
    const user = field(req, "user").trim();
    const password = field(req, "password");
    const cluster = await attempt(res, { user }, () => ClusterLogin.login(nc, user, password));
    if (cluster !== null) enter(req, res, cluster);
  });

  return router;
}
