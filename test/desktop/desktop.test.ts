import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Browser, BrowserContext, Page } from "playwright-core";
import WebSocket from "ws";
import { loadCredentials } from "../../pseudokernel/index.js";
import { CloudFsCore } from "../../vfs-fuse/index.js";
import { startDesktop, type DesktopHandle } from "../../web-desktop/index.js";
import { eventually, startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";
import { ARTIFACTS, ensureClientBuilt, launchChromium } from "./browser.js";

/** Small, so the oversized-upload test need not push 64 MiB through the browser. */
const UPLOAD_LIMIT = 1024 * 1024;
/** Passwords the tests give root, alice and bob (set with the shell's `passwd` and `useradd`). */
const ROOT_PASSWORD = "root-pw-1";
const ALICE_PASSWORD = "alice-pw-2";
const BOB_PASSWORD = "bob-pw-3";

let cluster: TestCluster;
let desktop: DesktopHandle;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let nc: NatsConnection;
let fs: CloudFsCore;
let cacheDir: string;

async function terminalText(p: Page = page): Promise<string> {
  return await p.locator(".window[data-kind=terminal] .xterm-rows").innerText();
}

async function waitForTerminal(text: string | RegExp, timeoutMs = 20_000, p: Page = page): Promise<string> {
  return await eventually(async () => {
    const t = await terminalText(p);
    return (typeof text === "string" ? t.includes(text) : text.test(t)) ? t : undefined;
  }, timeoutMs, `terminal to show ${String(text)}`);
}

async function typeInTerminal(line: string): Promise<void> {
  await raise("terminal");
  await page.locator(".window[data-kind=terminal] .terminal-host").click();
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

const TITLES: Record<string, string> = { terminal: "Terminal", files: "Files", processes: "Processes", nodes: "Nodes" };

/** Raises an open window by its tab in the taskbar (the launchers would open another Files or Terminal). */
async function raise(kind: string): Promise<void> {
  await page.locator(".window-tab", { hasText: new RegExp(`^${TITLES[kind]}$`) }).click();
  await page.locator(`.window[data-kind=${kind}].focused`).waitFor();
}

/** Opens a window from the taskbar's launchers. */
async function openWindow(kind: string): Promise<void> {
  await page.locator(`.taskbar [data-open=${kind}]`).click();
  await page.locator(`.window[data-kind=${kind}].focused`).waitFor();
}

async function shot(name: string, target: Page | ReturnType<Page["locator"]> = page): Promise<void> {
  await target.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

async function psJson(): Promise<{ pid: number; command: string; user: string }[]> {
  const r = await cluster.oneos(["ps", "--json"]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { pid: number; command: string; user: string }[];
}

/** Fills in and posts the login form of `p`, which shows the login page. */
async function logIn(p: Page, user: string, password: string): Promise<void> {
  await p.locator("input#user").fill(user);
  await p.locator("input#password").fill(password);
  await p.locator("form button[type=submit]").click();
}

/** POSTs the login form from outside a browser: the status, the Set-Cookie header and the page. */
async function postLogin(user: string, password: string, headers: Record<string, string> = {}): Promise<{ status: number; cookie: string | null; text: string }> {
  const res = await fetch(`${desktop.baseUrl}login`, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams({ user, password }).toString(),
  });
  return { status: res.status, cookie: res.headers.get("set-cookie"), text: await res.text() };
}

async function shOk(line: string): Promise<string> {
  const r = await cluster.sh(line);
  expect(r.status, `${line}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  await ensureClientBuilt();
  cluster = await startTestCluster();
  const natsUrl = (await cluster.status())[0]!.nats;
  // Root gets a password (to log in with the form), alice and bob are users of their own.
  await shOk(`passwd root <<< '${ROOT_PASSWORD}'`);
  await shOk(`useradd --password-stdin alice <<< '${ALICE_PASSWORD}'`);
  await shOk(`useradd --password-stdin bob <<< '${BOB_PASSWORD}'`);
  desktop = await startDesktop({
    home: cluster.home,
    natsUrl,
    credentials: await loadCredentials(cluster.credentialsFile("desktop")),
    ownerCredentials: await loadCredentials(cluster.credentialsFile("admin")),
    port: 0,
    uploadLimitBytes: UPLOAD_LIMIT,
  });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  nc = await cluster.connect("admin");
  cacheDir = await mkdtemp(join(tmpdir(), "oneos-desktop-test-"));
  fs = await CloudFsCore.open({ nc, cacheDir: join(cacheDir, "blocks"), journalDir: join(cacheDir, "journal") });
});

afterAll(async () => {
  await fs?.close();
  await nc?.close();
  await browser?.close();
  await desktop?.close();
  await cluster?.close();
  if (cacheDir !== undefined) await rm(cacheDir, { recursive: true, force: true });
});

describe("web desktop login", () => {
  it("refuses a bad token, API calls without a session, and cross-origin WebSockets", async () => {
    const bad = await fetch(`${desktop.baseUrl}?token=not-the-token`, { redirect: "manual" });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("set-cookie")).toBeNull();
    expect(await bad.text()).toContain("not valid");
    const api = await fetch(`${desktop.baseUrl}api/session`);
    expect(api.status).toBe(401);

    const good = await fetch(desktop.url, { redirect: "manual" });
    expect(good.status).toBe(303);
    const cookie = good.headers.get("set-cookie")!.split(";")[0]!;
    const wsUrl = desktop.baseUrl.replace("http:", "ws:") + "ws/live";
    const refused = (headers: Record<string, string>): Promise<number> =>
      new Promise((resolve) => {
        const ws = new WebSocket(wsUrl, { headers });
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("open", () => {
          ws.close();
          resolve(101);
        });
        ws.on("error", () => resolve(-1));
      });
    expect(await refused({ cookie, origin: "http://evil.example" })).toBe(403);
    expect(await refused({ origin: desktop.baseUrl.slice(0, -1) })).toBe(401);
    expect(await refused({ cookie, origin: desktop.baseUrl.slice(0, -1) })).toBe(101);
  });

  it("refuses a wrong password or an unknown user with just 'login incorrect', and a foreign page's login", async () => {
    for (const [user, password] of [["alice", "not-her-password"], ["nobody", ALICE_PASSWORD], ["Not A Name", "x"]] as const) {
      const r = await postLogin(user, password);
      expect(r.status, user).toBe(401);
      expect(r.cookie, user).toBeNull();
      expect(r.text, user).toContain("login incorrect");
      expect(r.text, user).not.toMatch(/no user|not a valid user|does not exist/i);
    }
    const csrf = await postLogin("alice", ALICE_PASSWORD, { Origin: "http://evil.example" });
    expect(csrf.status).toBe(403);
    expect(csrf.cookie).toBeNull();
  });

  it("the owner's URL token logs in as root", async () => {
    const res = await fetch(desktop.url, { redirect: "manual" });
    expect(res.status).toBe(303);
    const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
    const session = (await (await fetch(`${desktop.baseUrl}api/session`, { headers: { cookie } })).json()) as { user: string; uid: number };
    expect(session).toMatchObject({ user: "root", uid: 0 });
  });

  it("logs in with name and password, keeps the session in an httpOnly SameSite=Strict cookie, and shows who", async () => {
    await page.goto(desktop.baseUrl);
    await logIn(page, "root", "wrong");
    await expect.poll(() => page.locator("[role=alert]").innerText()).toBe("login incorrect");
    await shot("login-incorrect");
    expect(await context.cookies()).toHaveLength(0);
    await logIn(page, "root", ROOT_PASSWORD);
    await page.locator(".taskbar").waitFor();
    expect(new URL(page.url()).pathname).toBe("/");
    await expect.poll(() => page.locator('[data-test="user"]').innerText()).toBe("root");
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]!.httpOnly).toBe(true);
    expect(cookies[0]!.sameSite).toBe("Strict");
  });
});

describe("Terminal window", () => {
  it("runs the oneos shell: `echo hello | @n2 tr a-z A-Z` prints HELLO", async () => {
    await page.locator(".window[data-kind=terminal]").waitFor();
    await waitForTerminal("$");
    await typeInTerminal("echo hello | @n2 tr a-z A-Z");
    const text = await waitForTerminal(/^HELLO\s*$/m);
    expect(text).toMatch(/^HELLO\s*$/m);
    await shot("terminal", page.locator(".window[data-kind=terminal]"));
  });

  it("re-attaches to the same shell after a page reload", async () => {
    await typeInTerminal("MARK=kept$((6*7))");
    await page.waitForTimeout(300);
    await page.reload();
    await page.locator(".window[data-kind=terminal]").waitFor();
    await waitForTerminal("HELLO"); // the recent output is replayed
    await typeInTerminal("echo $MARK-after-reload");
    await waitForTerminal("kept42-after-reload");
  });
});

describe("Terminal flow control", () => {
  it("a flood of output through a remote pipe reaches the page whole, and the shell stays responsive", async () => {
    await typeInTerminal("seq 1 150000 | @n2 cat; echo flood-$((40+2))");
    await waitForTerminal(/^150000\s*\n.*flood-42/m, 90_000);
    await typeInTerminal("echo still-$((1+1))");
    await waitForTerminal("still-2");
  });
});

describe("Files window", () => {
  it("uploads several files with progress, and the cluster reads them", async () => {
    await openWindow("files");
    const files = page.locator(".window[data-kind=files]");
    await files.locator(".path-input").fill("/home");
    await files.locator(".path-input").press("Enter");
    // The listing of /home is shown (it holds root's home) before anything is uploaded into it.
    await files.locator('tr[data-name="root"]').waitFor();
    await files.locator('[data-test="upload-input"]').setInputFiles([
      { name: "desk-upload.txt", mimeType: "text/plain", buffer: Buffer.from("uploaded from the desktop\n") },
      { name: "terminal.png", mimeType: "image/png", buffer: await page.locator(".window[data-kind=terminal]").screenshot() },
    ]);
    await files.locator('tr[data-name="desk-upload.txt"]').waitFor();
    await files.locator('tr[data-name="terminal.png"]').waitFor();
    expect((await fs.readFile("/home/desk-upload.txt")).toString()).toBe("uploaded from the desktop\n");
    // Through the shell too, when the runtimes mount CloudFS for their processes.
    const nodes = JSON.parse((await cluster.oneos(["nodes", "--json"])).stdout) as { name: string; mount: string | null }[];
    if (nodes.find((n) => n.name === "n3")?.mount != null) {
      await typeInTerminal("@n3 cat /home/desk-upload.txt");
      await waitForTerminal("uploaded from the desktop");
    }
    await shot("files", files);
  });

  it("shows a progress bar while an upload is under way", async () => {
    await raise("files");
    const files = page.locator(".window[data-kind=files]");
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    // ~256 KiB/s up: a 900 KiB upload takes a few seconds, long enough to see the bar move.
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
    try {
      await files.locator('[data-test="upload-input"]').setInputFiles([
        { name: "slow-1.bin", mimeType: "application/octet-stream", buffer: Buffer.alloc(450 * 1024, 1) },
        { name: "slow-2.bin", mimeType: "application/octet-stream", buffer: Buffer.alloc(450 * 1024, 2) },
      ]);
      const bar = files.locator(".upload-progress");
      await bar.waitFor();
      await expect.poll(async () => Number(await bar.getAttribute("aria-valuenow")), { timeout: 20_000 }).toBeGreaterThan(0);
      await shot("files-uploading", files);
      await bar.waitFor({ state: "detached", timeout: 60_000 });
    } finally {
      await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
      await cdp.detach();
    }
    expect((await fs.stat("/home/slow-2.bin")).size).toBe(450 * 1024);
    expect((await fs.readFile("/home/slow-1.bin")).every((b) => b === 1)).toBe(true);
  });

  it("opens a text file in the editor and saves it", async () => {
    await raise("files");
    const files = page.locator(".window[data-kind=files]");
    await files.locator('tr[data-name="desk-upload.txt"]').dblclick();
    const editor = files.locator(".editor textarea");
    await expect.poll(() => editor.inputValue()).toBe("uploaded from the desktop\n");
    await editor.fill("edited in the browser\n");
    await files.locator(".editor button.primary").click();
    await eventually(async () => ((await fs.readFile("/home/desk-upload.txt")).toString() === "edited in the browser\n" ? true : undefined), 10_000, "the saved file");
    await shot("files-editor", files);
    await files.locator(".editor button", { hasText: "Close" }).click();
  });

  it("views an image", async () => {
    await raise("files");
    const files = page.locator(".window[data-kind=files]");
    await files.locator('tr[data-name="terminal.png"]').dblclick();
    const img = files.locator(".image-box img");
    await img.waitFor();
    await expect.poll(() => img.evaluate((el) => (el as HTMLImageElement).naturalWidth)).toBeGreaterThan(100);
    await shot("files-image", files);
    await files.locator(".image-view button", { hasText: "Close" }).click();
  });

  it("makes, renames and deletes a folder", async () => {
    await raise("files");
    const files = page.locator(".window[data-kind=files]");
    await files.locator("button", { hasText: "New folder" }).click();
    await files.locator(".name-bar input").fill("made-here");
    await files.locator(".name-bar button.primary").click();
    await files.locator('tr[data-name="made-here"]').click();
    await files.locator(".selection-bar button", { hasText: "Rename" }).click();
    await files.locator(".name-bar input").fill("renamed-here");
    await files.locator(".name-bar button.primary").click();
    await files.locator('tr[data-name="renamed-here"]').waitFor();
    expect((await fs.stat("/home/renamed-here")).mode & 0o170000).toBe(0o040000);
    await files.locator('tr[data-name="renamed-here"]').click();
    await files.locator(".selection-bar button.danger").click();
    await files.locator(".confirm-bar button.danger").click();
    await files.locator('tr[data-name="renamed-here"]').waitFor({ state: "detached" });
    await expect(fs.stat("/home/renamed-here")).rejects.toThrow(/ENOENT/);
  });

  it("refuses an oversized upload with a clear error, in the browser and at the server", async () => {
    await raise("files");
    const files = page.locator(".window[data-kind=files]");
    await files.locator('[data-test="upload-input"]').setInputFiles([{ name: "big.bin", mimeType: "application/octet-stream", buffer: Buffer.alloc(2 * UPLOAD_LIMIT) }]);
    await expect.poll(() => files.locator(".message.error").innerText()).toMatch(/big\.bin \(2\.0 MiB\) over the 1\.0 MiB upload limit/);
    await shot("files-too-big", files);
    const server = await page.evaluate(async (size) => {
      const res = await fetch("/api/files/content?path=/home/big.bin", { method: "PUT", body: new Uint8Array(size) });
      return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } };
    }, 2 * UPLOAD_LIMIT);
    expect(server.status).toBe(413);
    expect(server.body.error.code).toBe("EFBIG");
    expect(server.body.error.message).toMatch(/upload limit/);
    await expect(fs.stat("/home/big.bin")).rejects.toThrow(/ENOENT/);
  });

  it("refuses paths that escape CloudFS", async () => {
    const statuses = await page.evaluate(async () => {
      const out: number[] = [];
      for (const p of ["/home/../..", "/home/../../etc/passwd", "../etc", "/home/./x"]) {
        out.push((await fetch(`/api/files/list?path=${encodeURIComponent(p)}`)).status);
        out.push((await fetch(`/api/files/content?path=${encodeURIComponent(p)}`)).status);
      }
      out.push((await fetch("/api/files/rename", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ from: "/home/desk-upload.txt", to: "/home/../../x" }) })).status);
      return out;
    });
    expect(statuses.every((s) => s === 400), String(statuses)).toBe(true);
  });
});

describe("Processes window", () => {
  it("shows the cluster's processes and kills one", async () => {
    const sleeper = cluster.start(["shell", "-c", "@n2 sleep 321"]);
    const target = await eventually(async () => (await psJson()).find((p) => p.command === "sleep 321"), 20_000, "sleep in ps");
    await openWindow("processes");
    const win = page.locator(".window[data-kind=processes]");
    await win.locator(".filter").fill("sleep 321");
    await win.locator(`tr[data-pid="${target.pid}"]`).click();
    await win.locator(".details").waitFor();
    await shot("processes", win);
    await win.locator(".details button.danger", { hasText: /^Kill$/ }).click();
    await eventually(async () => ((await psJson()).some((p) => p.pid === target.pid) ? undefined : true), 20_000, "the process to leave oneos ps");
    const result = await sleeper.done;
    expect(result.status).not.toBe(0);
  });
});

describe("Processes window: output tail", () => {
  const ticks = (text: string): number[] => [...text.matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1]));

  it("selecting a process shows its output and follows it live until it ends", async () => {
    const ticker = cluster.start(["shell", "-c", "@n2 sh -c 'for i in $(seq 1 40); do echo tick $i; sleep 0.25; done' | cat"]);
    try {
      const target = await eventually(async () => (await psJson()).find((p) => p.command.startsWith("sh -c for i in")), 20_000, "the ticker in ps");
      await raise("processes");
      const win = page.locator(".window[data-kind=processes]");
      await win.locator(".filter").fill("tick");
      await win.locator(`tr[data-pid="${target.pid}"]`).click();
      const output = win.locator(".process-output .output-text");
      await expect.poll(() => output.innerText(), { timeout: 15_000 }).toMatch(/^tick 1$/m);
      const first = Math.max(...ticks(await output.innerText()));
      expect(first).toBeLessThan(40);
      // Following: later lines arrive without touching anything, and the end is seen.
      await expect.poll(async () => Math.max(...ticks(await output.innerText())), { timeout: 15_000 }).toBeGreaterThan(first);
      await shot("processes-output", win);
      // The last line, and the end: one more look is taken after the process is seen to end.
      await expect.poll(async () => Math.max(...ticks(await output.innerText())), { timeout: 30_000 }).toBe(40);
      await expect.poll(() => win.locator(".process-output").getAttribute("data-state"), { timeout: 15_000 }).toBe("ended");
      const all = ticks(await output.innerText());
      expect(all).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      // Scrolled to the newest line.
      const scroll = await output.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
      expect(scroll).toBeLessThan(24);

      // The API: what came after `since`, or the whole tail; an unknown process is ESRCH.
      const api = await page.evaluate(async (pid) => {
        const whole = (await (await fetch(`/api/cluster/processes/${pid}/output`)).json()) as { total: number; from: number; data: string };
        const part = (await (await fetch(`/api/cluster/processes/${pid}/output?since=${whole.total - 8}`)).json()) as { total: number; from: number; data: string };
        const none = await fetch("/api/cluster/processes/999999/output");
        const bad = await fetch(`/api/cluster/processes/${pid}/output?since=-1`);
        return { whole, part, none: { status: none.status, body: (await none.json()) as { error: { code: string } } }, bad: bad.status };
      }, target.pid);
      expect(api.whole.from).toBe(0);
      expect(Buffer.from(api.whole.data, "base64").toString()).toMatch(/^tick 1\n(.|\n)*tick 40\n$/);
      expect(api.part).toMatchObject({ total: api.whole.total, from: api.whole.total - 8 });
      expect(Buffer.from(api.part.data, "base64").toString()).toBe("tick 40\n");
      expect(api.none.status).toBe(404);
      expect(api.none.body.error.code).toBe("ESRCH");
      expect(api.bad).toBe(400);
    } finally {
      await ticker.done;
    }
  });

  it("stays readable on a narrow screen", async () => {
    await page.setViewportSize({ width: 420, height: 800 });
    try {
      await raise("processes");
      await page.waitForTimeout(300);
      await expect.poll(() => page.locator(".window[data-kind=processes] .output-text").innerText()).toMatch(/^tick 40$/m);
      await shot("processes-output-narrow");
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });
});

describe("a user's desktop acts as that user", () => {
  let aliceContext: BrowserContext;
  let alice: Page;
  let aliceUid: number;

  const aliceTerminal = async (line: string): Promise<void> => {
    await alice.locator(".window-tab", { hasText: /^Terminal$/ }).click();
    await alice.locator(".window[data-kind=terminal] .terminal-host").click();
    await alice.keyboard.type(line);
    await alice.keyboard.press("Enter");
  };

  beforeAll(async () => {
    aliceUid = Number(/uid=(\d+)\(alice\)/.exec(await shOk("id alice"))?.[1]);
    aliceContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    alice = await aliceContext.newPage();
  });

  afterAll(async () => {
    await aliceContext?.close();
  });

  it("alice logs in (not with a wrong password) and sees her name in the top bar", async () => {
    await alice.goto(desktop.baseUrl);
    await logIn(alice, "alice", BOB_PASSWORD);
    await expect.poll(() => alice.locator("[role=alert]").innerText()).toBe("login incorrect");
    await logIn(alice, "alice", ALICE_PASSWORD);
    await expect.poll(() => alice.locator('[data-test="user"]').innerText(), { timeout: 15_000 }).toBe("alice");
    // root's page, logged in at the same time, is still root's.
    await expect.poll(() => page.locator('[data-test="user"]').innerText()).toBe("root");
  });

  it("her terminal's shell runs as alice", async () => {
    await alice.locator(".window[data-kind=terminal]").waitFor();
    await waitForTerminal("$", 20_000, alice);
    await aliceTerminal("whoami; id");
    const text = await waitForTerminal(/^uid=\d+\(alice\)/m, 20_000, alice);
    expect(text).toMatch(/^alice\s*$/m);
    await shot("alice-terminal", alice.locator(".window[data-kind=terminal]"));
  });

  it("her Files window cannot open bob's home, and what she uploads is hers", async () => {
    await alice.locator(".taskbar [data-open=files]").click();
    const files = alice.locator(".window[data-kind=files]");
    await expect.poll(() => files.locator(".path-input").inputValue()).toBe("/home/alice");
    await files.locator('[data-test="upload-input"]').setInputFiles([{ name: "alice.txt", mimeType: "text/plain", buffer: Buffer.from("mine\n") }]);
    await files.locator('tr[data-name="alice.txt"]').waitFor();
    const stat = await fs.stat("/home/alice/alice.txt");
    expect(stat.uid).toBe(aliceUid);
    expect(stat.gid).toBe(aliceUid);
    await files.locator(".path-input").fill("/home/bob");
    await files.locator(".path-input").press("Enter");
    await expect.poll(() => files.locator(".message.error").innerText()).toMatch(/^permission denied \(EACCES: \/home\/bob\)/);
    await shot("alice-files-bob-refused", files);
    const status = await alice.evaluate(async () => (await fetch("/api/files/list?path=/home/bob")).status);
    expect(status).toBe(403);
  });

  it("killing another user's process from her Processes window is refused with a clear message", async () => {
    const sleeper = cluster.start(["shell", "-c", "@n2 sleep 432"]);
    try {
      const target = await eventually(async () => (await psJson()).find((p) => p.command === "sleep 432"), 20_000, "sleep in ps");
      expect(target.user).toBe("root");
      await alice.locator(".taskbar [data-open=processes]").click();
      const win = alice.locator(".window[data-kind=processes]");
      await win.locator(".filter").fill("sleep 432");
      await win.locator(`tr[data-pid="${target.pid}"]`).click();
      await win.locator(".details button.danger", { hasText: /^Kill$/ }).click();
      await expect.poll(() => win.locator(".message.error").innerText()).toBe(
        `kill ${target.pid}: operation not permitted (the process belongs to root; you are alice)`,
      );
      // Selecting it also asked for its output tail, in her session: refused the same way.
      await expect.poll(() => win.locator(".process-output .output-error").innerText()).toBe(
        `output of ${target.pid}: operation not permitted (the process belongs to root; you are alice)`,
      );
      expect(await win.locator(".process-output .output-text").count()).toBe(0);
      await shot("alice-kill-refused", win);
      expect((await psJson()).some((p) => p.pid === target.pid)).toBe(true);
      // Node kill/restart are root's: her Nodes window has no such buttons, and the API refuses.
      const nodeAction = await alice.evaluate(async () => (await fetch("/api/cluster/nodes/n3/kill", { method: "POST" })).status);
      expect(nodeAction).toBe(403);
      await cluster.oneos(["kill", String(target.pid)]);
    } finally {
      await sleeper.done;
    }
  });

  it("logging out ends her session and hangs up her shell", async () => {
    const shells = async (): Promise<number> => (await psJson()).filter((p) => p.user === "alice" && p.command.startsWith("oneos shell")).length;
    expect(await shells()).toBeGreaterThan(0);
    const [cookie] = await aliceContext.cookies();
    await alice.locator('[data-test="logout"]').click();
    await alice.locator("input#password").waitFor();
    expect(await aliceContext.cookies()).toHaveLength(0);
    // The login ended at the server too: its old cookie opens nothing.
    const res = await fetch(`${desktop.baseUrl}api/session`, { headers: { cookie: `${cookie!.name}=${cookie!.value}` } });
    expect(res.status).toBe(401);
    await eventually(async () => ((await shells()) === 0 ? true : undefined), 20_000, "alice's shell to leave ps");
  });
});

describe("Nodes window", () => {
  it("shows three ready nodes with live charts", async () => {
    await openWindow("nodes");
    const win = page.locator(".window[data-kind=nodes]");
    await expect.poll(() => win.locator('.node-card[data-state="ready"]').count(), { timeout: 15_000 }).toBe(3);
    await page.waitForTimeout(3000); // a few samples for the charts
    expect(await win.locator(".node-card svg.spark polyline").count()).toBe(6);
    await shot("nodes", win);
  });

  it("moves and resizes windows: all four side by side at 1280×800", async () => {
    const area = (await page.locator(".desktop-area").boundingBox())!;
    const half = Math.floor(area.width / 2);
    const rowH = Math.floor(area.height / 2);
    const layout: [string, number, number][] = [["terminal", 0, 0], ["files", half, 0], ["processes", 0, rowH], ["nodes", half, rowH]];
    for (const [kind, x, y] of layout) {
      await raise(kind); // raised, so its title bar is not under another window
      const win = page.locator(`.window[data-kind=${kind}]`);
      // Resize first: a window moved to the right half may hang past the screen's edge, handle and all.
      const handle = (await win.locator(".resize-handle").boundingBox())!;
      const before = (await win.boundingBox())!;
      await page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);
      await page.mouse.down();
      await page.mouse.move(handle.x + handle.width / 2 + (half - 12 - before.width), handle.y + handle.height / 2 + (rowH - 12 - before.height), { steps: 5 });
      await page.mouse.up();
      const title = (await win.locator(".titlebar").boundingBox())!;
      await page.mouse.move(title.x + 40, title.y + title.height / 2);
      await page.mouse.down();
      await page.mouse.move(area.x + x + 6 + 40, area.y + y + 6 + title.height / 2, { steps: 5 });
      await page.mouse.up();
      const box = (await win.boundingBox())!;
      expect(Math.abs(box.x - (area.x + x + 6))).toBeLessThan(3);
      expect(Math.abs(box.y - (area.y + y + 6))).toBeLessThan(3);
      expect(Math.abs(box.x + box.width - (area.x + x + half - 6))).toBeLessThan(12);
    }
    await page.waitForTimeout(500); // the terminal refits to its new size
    await shot("desktop-1280x800");
  });

  it("shows one window at a time on a narrow screen", async () => {
    await page.setViewportSize({ width: 420, height: 800 });
    await page.waitForTimeout(300);
    await shot("desktop-narrow");
    await raise("terminal");
    await page.waitForTimeout(300);
    await shot("desktop-narrow-terminal");
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("kills and restarts a node of the local test cluster", async () => {
    const win = page.locator(".window[data-kind=nodes]");
    await raise("nodes");
    await win.locator('.node-card[data-node="n3"] button', { hasText: "Kill" }).click();
    await expect.poll(() => win.locator('.node-card[data-node="n3"]').getAttribute("data-state"), { timeout: 30_000 }).not.toBe("ready");
    await shot("nodes-n3-killed", win);
    await win.locator('.node-card[data-node="n3"] button', { hasText: "Restart" }).click();
    await expect.poll(() => win.locator('.node-card[data-node="n3"]').getAttribute("data-state"), { timeout: 60_000 }).toBe("ready");
  });
});

describe("Ports window", () => {
  it("lists a server listening on a node, and forgets it when the server stops", async () => {
    const server = cluster.start(["shell", "-c", "cd /tmp && @n1 python3 -m http.server 8765"]);
    try {
      await openWindow("ports");
      const win = page.locator(".window[data-kind=ports]");
      const row = win.locator('tr[data-port="8765"]');
      await expect.poll(() => row.count(), { timeout: 30_000 }).toBe(1);
      expect(await row.locator("td").nth(1).textContent()).toBe("n1");
      expect(await row.locator("td.command").textContent()).toContain("http.server");
      await shot("ports", win);
      const ps = (await psJson()).find((p) => p.command.includes("http.server 8765"));
      expect(ps).toBeDefined();
      await cluster.oneos(["kill", String(ps!.pid)]);
      await expect.poll(() => row.count(), { timeout: 30_000 }).toBe(0);
    } finally {
      await server.done;
    }
  });
});
