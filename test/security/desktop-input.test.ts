import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCredentials } from "../../pseudokernel/index.js";
import { startDesktop, type DesktopHandle } from "../../web-desktop/index.js";
import { startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";
import { ensureClientBuilt } from "../desktop/browser.js";

/**
 * The desktop's HTTP API against hostile input, on the real server: every spelling of a path that
 * leaves CloudFS (`..`, `%2e%2e`, NUL, relative) is a 4xx and never the host's file, and bodies over
 * their limits are 413 before they are stored.
 */

const UPLOAD_LIMIT = 256 * 1024;
/** What the host's /etc/passwd starts with: it must never come back through the desktop. */
const HOST_PASSWD = /root:x?:0:0:/;

let cluster: TestCluster;
let desktop: DesktopHandle;
let cookie: string;

beforeAll(async () => {
  await ensureClientBuilt();
  cluster = await startTestCluster();
  desktop = await startDesktop({
    home: cluster.home,
    natsUrl: (await cluster.status())[0]!.nats,
    credentials: await loadCredentials(cluster.credentialsFile("desktop")),
    ownerCredentials: await loadCredentials(cluster.credentialsFile("admin")),
    port: 0,
    uploadLimitBytes: UPLOAD_LIMIT,
  });
  // The owner's token link logs in as root: the strongest caller, so a refusal is the path's, not a permission's.
  const login = await fetch(desktop.url, { redirect: "manual" });
  expect(login.status).toBe(303);
  cookie = login.headers.get("set-cookie")!.split(";")[0]!;
  // A directory to write in, so an upload's answer is about its size, not a missing parent.
  const made = await json("/api/files/mkdir", { path: "/home/desk" });
  expect(made.status, made.text).toBe(201);
});

afterAll(async () => {
  await desktop?.close();
  await cluster?.close();
});

/** An HTTP request with the raw path as given (fetch would normalise `..` and `%2e%2e` away). */
function raw(method: string, path: string, options: { body?: Buffer | string; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string }> {
  const url = new URL(desktop.baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path, headers: { Cookie: cookie, ...options.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    // The server may answer 413 and close before the body is all sent: that is the point.
    req.on("error", (error: NodeJS.ErrnoException) => (error.code === "EPIPE" || error.code === "ECONNRESET" ? undefined : reject(error)));
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

function json(path: string, value: unknown): Promise<{ status: number; text: string }> {
  return raw("POST", path, { body: JSON.stringify(value), headers: { "Content-Type": "application/json" } });
}

/** Paths that leave CloudFS or are not paths, as the query string carries them. */
const HOSTILE_PATHS: readonly string[] = [
  "/home/../..",
  "/home/../../etc/passwd",
  "/home/desk/../../../etc/passwd",
  "../etc/passwd",
  "etc/passwd",
  "/home/./root",
  "/home/desk/..",
  "/home/desk/\0",
  "/home/\0/../../etc/passwd",
  "",
  "/" + "a/".repeat(3000),
];

describe("desktop API: path traversal", () => {
  it("refuses every traversal spelling in query paths with 400, in list, stat, content and upload", async () => {
    const encodings = (p: string): string[] => [
      encodeURIComponent(p),
      // `.` spelled %2e and `/` spelled %2f: decoded once by the query parser, then refused.
      p.replaceAll(".", "%2e").replaceAll("/", "%2f").replaceAll("\0", "%00"),
    ];
    for (const p of HOSTILE_PATHS) {
      for (const q of encodings(p)) {
        for (const [method, route] of [["GET", "list"], ["GET", "stat"], ["GET", "content"], ["PUT", "content"]] as const) {
          const r = await raw(method, `/api/files/${route}?path=${q}`, method === "PUT" ? { body: "x" } : {});
          expect(r.status, `${method} ${route} ${JSON.stringify(p)} as ${q.slice(0, 60)}: ${r.text.slice(0, 200)}`).toBe(400);
          expect(r.text).not.toMatch(HOST_PASSWD);
        }
      }
    }
  });

  it("an absolute host path or a double-encoded `..` names a CloudFS entry (404), never the host's file", async () => {
    for (const q of ["/etc/passwd", "/%252e%252e/%252e%252e/etc/passwd", "/home/%2e%2e%5c%2e%2e%5cetc%5cpasswd"]) {
      const r = await raw("GET", `/api/files/content?path=${q}`);
      expect(r.status, `${q}: ${r.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
      expect(r.status, q).toBeLessThan(500);
      expect(r.text).not.toMatch(HOST_PASSWD);
    }
  });

  it("refuses traversal in JSON bodies of mkdir, rename and delete with 400", async () => {
    for (const p of HOSTILE_PATHS) {
      for (const [route, body] of [
        ["mkdir", { path: p }],
        ["delete", { path: p }],
        ["rename", { from: "/home/desk", to: p }],
        ["rename", { from: p, to: "/home/desk/x" }],
      ] as const) {
        const r = await json(`/api/files/${route}`, body);
        expect(r.status, `${route} ${JSON.stringify(body).slice(0, 80)}: ${r.text.slice(0, 200)}`).toBe(400);
      }
    }
    // Wrong types where a path belongs.
    for (const body of [{ path: 42 }, { path: null }, { path: ["/home"] }, { path: { p: "/home" } }, [], "x", null]) {
      const r = await json("/api/files/mkdir", body);
      expect(r.status, `mkdir ${JSON.stringify(body)}`).toBe(400);
    }
  });

  it("static files and unknown routes do not serve anything outside the client build", async () => {
    for (const path of [
      "/../../../../etc/passwd",
      "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
      "/..%2f..%2f..%2f..%2fetc%2fpasswd",
      "/assets/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
      "/%00/etc/passwd",
      "/api/files/..%2f..%2f..%2fetc%2fpasswd",
    ]) {
      const r = await raw("GET", path);
      expect(r.status, path).toBeLessThan(500);
      expect(r.text, path).not.toMatch(HOST_PASSWD);
    }
  });
});

describe("desktop API: oversized bodies", () => {
  it("a JSON body over the limit is 413, whatever the route", async () => {
    const big = JSON.stringify({ path: "/home/desk/x", pad: "p".repeat(200 * 1024) });
    for (const route of ["mkdir", "rename", "delete"]) {
      const r = await raw("POST", `/api/files/${route}`, { body: big, headers: { "Content-Type": "application/json" } });
      expect(r.status, `${route}: ${r.text.slice(0, 200)}`).toBe(413);
    }
  });

  it("an upload over the limit is 413 by its Content-Length and when streamed without one; nothing is stored", async () => {
    const over = Buffer.alloc(UPLOAD_LIMIT + 1, 0x61);
    const declared = await raw("PUT", "/api/files/content?path=/home/desk/big1", { body: over, headers: { "Content-Length": String(over.length) } });
    expect(declared.status).toBe(413);
    const chunked = await raw("PUT", "/api/files/content?path=/home/desk/big2", { body: over, headers: { "Transfer-Encoding": "chunked" } });
    expect(chunked.status).toBe(413);
    for (const name of ["big1", "big2"]) {
      const stat = await raw("GET", `/api/files/stat?path=/home/desk/${name}`);
      expect(stat.status, `${name} must not exist`).toBe(404);
    }
    // At the limit it is stored: the 413s above are the limit's, not a broken upload.
    const fits = await raw("PUT", "/api/files/content?path=/home/desk/fits", { body: Buffer.alloc(UPLOAD_LIMIT, 0x62), headers: { "Content-Length": String(UPLOAD_LIMIT) } });
    expect(fits.status, fits.text).toBe(201);
  });

  it("an oversized login form is 413; a lying Content-Length does not hang the server", async () => {
    const form = `user=root&password=${"p".repeat(100 * 1024)}`;
    const r = await raw("POST", "/login", { body: form, headers: { "Content-Type": "application/x-www-form-urlencoded" } });
    expect(r.status).toBe(413);
    const lying = await raw("PUT", "/api/files/content?path=/home/desk/lying", { body: "x", headers: { "Content-Length": String(2 ** 53) } });
    expect(lying.status).toBeGreaterThanOrEqual(400);
    expect(lying.status).toBeLessThan(500);
    const alive = await raw("GET", "/api/files/list?path=/home/desk");
    expect(alive.status).toBe(200);
  });
});
