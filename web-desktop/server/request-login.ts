import type { Response } from "express";
import { ApiError } from "./api-error.js";
import { ClusterLogin } from "./cluster-login.js";

/** The API's session check puts the request's login here; every handler acts as that user. */
const KEY = "oneosLogin";

export function setRequestLogin(res: Response, login: ClusterLogin): void {
  res.locals[KEY] = login;
}

/** The login a request acts as; a route mounted without the session check is a bug, refused as 401. */
export function requestLogin(res: Response): ClusterLogin {
  const login: unknown = res.locals[KEY];
  if (!(login instanceof ClusterLogin)) throw new ApiError(401, "EACCES", "not logged in");
  return login;
}
