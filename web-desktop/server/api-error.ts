import type { NextFunction, Request, Response } from "express";
import { isFsError, type FsErrorCode } from "../../vfs-fuse/index.js";
import { KernelError } from "../../pseudokernel/index.js";

/** An error the HTTP API answers with: a status, a stable code and a message meant for the user. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.code = code;
  }
}

const FS_STATUS: Partial<Record<FsErrorCode, number>> = {
  ENOENT: 404,
  EACCES: 403,
  EPERM: 403,
  EEXIST: 409,
  ENOTEMPTY: 409,
  EBUSY: 409,
  ENOTDIR: 400,
  EISDIR: 400,
  EINVAL: 400,
  ENAMETOOLONG: 400,
  ELOOP: 400,
  EXDEV: 400,
  EFBIG: 413,
  ENOSPC: 507,
};

const KERNEL_STATUS: Record<string, number> = { ESRCH: 404, EPERM: 403, EINVAL: 400, ENONODE: 503, ETIMEDOUT: 504 };

/** The {status, code, message} an API answer carries for any thrown value. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (isFsError(error)) {
    // CloudFS says "EACCES: /home/bob"; the Files window's user should read what that means.
    const text = error.code === "EACCES" || error.code === "EPERM" ? `permission denied (${error.message})` : error.message;
    return new ApiError(FS_STATUS[error.code] ?? 500, error.code, text, { cause: error });
  }
  if (error instanceof KernelError) return new ApiError(KERNEL_STATUS[error.code] ?? 500, error.code, error.message, { cause: error });
  // body-parser's errors carry `type` and `status` (e.g. entity.too.large → 413).
  const e = error as { type?: unknown; status?: unknown; message?: unknown };
  if (e !== null && typeof e === "object" && e.type === "entity.too.large") {
    return new ApiError(413, "EFBIG", "request body too large", { cause: error });
  }
  if (e !== null && typeof e === "object" && typeof e.status === "number" && e.status >= 400 && e.status < 500) {
    return new ApiError(e.status, "EINVAL", String(e.message), { cause: error });
  }
  return new ApiError(500, "EIO", error instanceof Error ? error.message : String(error), { cause: error });
}

/** Express error middleware: every API failure is `{ error: { code, message } }` with its status. */
export function apiErrorHandler(error: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) {
    next(error);
    return;
  }
  const api = toApiError(error);
  res.status(api.status).json({ error: { code: api.code, message: api.message } });
}
