import { extname } from "node:path";
import { Router, type Request, type Response } from "express";
import { ApiError } from "./api-error.js";
import { formatBytes, type CloudFiles } from "./cloud-files.js";
import { cloudPath } from "./cloud-path.js";
import { requestLogin } from "./request-login.js";

/** Content types the Files window shows inline; everything else is sent as bytes to download or edit. */
const INLINE_TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".bmp": "image/bmp",
  ".svg": "image/svg+xml",
  ".txt": "text/plain; charset=utf-8",
};

function query(req: Request, name: string): unknown {
  return (req.query as Record<string, unknown>)[name];
}

function body(req: Request): Record<string, unknown> {
  const b: unknown = req.body;
  if (b === null || typeof b !== "object" || Array.isArray(b)) throw new ApiError(400, "EINVAL", "expected a JSON object body");
  return b as Record<string, unknown>;
}

/** Writes to the response, resolving when it can take more (HTTP back-pressure reaches CloudFS reads). */
function writeWithDrain(res: Response, chunk: Buffer): Promise<void> {
  if (res.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      res.off("drain", onDrain);
      res.off("close", onClose);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onClose = (): void => {
      cleanup();
      reject(new ApiError(499, "EPIPE", "client went away"));
    };
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}

/**
 * The Files window's HTTP API over CloudFS, acting as the request's logged-in user (CloudFS checks
 * their uid/gid). Every path goes through `cloudPath` (absolute, no `.`/`..`); uploads and saves are
 * streamed and capped at `uploadLimitBytes`.
 */
export function filesRoutes(files: CloudFiles, uploadLimitBytes: number): Router {
  const router = Router();

  router.get("/list", async (req, res) => {
    const path = cloudPath(query(req, "path"));
    res.json({ path, ...(await files.list(path, requestLogin(res).cred)) });
  });

  router.get("/stat", async (req, res) => {
    res.json(await files.stat(cloudPath(query(req, "path")), requestLogin(res).cred));
  });

  router.get("/content", async (req, res) => {
    const path = cloudPath(query(req, "path"));
    const { cred } = requestLogin(res);
    const entry = await files.stat(path, cred);
    if (entry.type === "dir") throw new ApiError(400, "EISDIR", `${path} is a directory`);
    const name = path.slice(path.lastIndexOf("/") + 1);
    const download = query(req, "download") === "1";
    res.setHeader("Content-Type", (!download && INLINE_TYPES[extname(name).toLowerCase()]) || "application/octet-stream");
    res.setHeader("Content-Length", String(entry.size));
    // Files are user data: never let one run as a page of this origin (an uploaded .svg or .html).
    res.setHeader("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'");
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Cache-Control", "no-store");
    if (download) res.setHeader("Content-Disposition", `attachment; filename*=UTF-8''${encodeURIComponent(name)}`);
    const aborted = new AbortController();
    res.once("close", () => aborted.abort());
    await files.read(path, cred, { write: (chunk) => writeWithDrain(res, chunk), signal: aborted.signal });
    res.end();
  });

  // Upload and editor save: the raw request body becomes the file's content.
  router.put("/content", async (req, res) => {
    const path = cloudPath(query(req, "path"));
    const declared = Number(req.headers["content-length"] ?? "0");
    if (Number.isFinite(declared) && declared > uploadLimitBytes) {
      // Refuse before reading: the browser learns at once and no byte is stored.
      res.setHeader("Connection", "close");
      throw new ApiError(413, "EFBIG", `file too large: ${formatBytes(declared)} is over the ${formatBytes(uploadLimitBytes)} upload limit`);
    }
    const size = await files.write(path, requestLogin(res).cred, { chunks: req as AsyncIterable<Buffer>, limitBytes: uploadLimitBytes });
    res.status(201).json({ path, size });
  });

  router.post("/mkdir", async (req, res) => {
    const path = cloudPath(body(req)["path"]);
    await files.mkdir(path, requestLogin(res).cred);
    res.status(201).json({ path });
  });

  router.post("/rename", async (req, res) => {
    const b = body(req);
    const from = cloudPath(b["from"]);
    const to = cloudPath(b["to"]);
    await files.rename(from, to, requestLogin(res).cred);
    res.json({ from, to });
  });

  router.post("/delete", async (req, res) => {
    const path = cloudPath(body(req)["path"]);
    res.json({ path, removed: await files.remove(path, requestLogin(res).cred) });
  });

  return router;
}
