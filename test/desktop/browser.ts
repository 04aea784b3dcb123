import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";
import { runProcess } from "../harness/oneos-cluster.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/desktop/", import.meta.url));

/** Debian's Chromium, headless, with everything that would phone home turned off. */
export async function launchChromium(): Promise<Browser> {
  await mkdir(ARTIFACTS, { recursive: true });
  return await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Builds the desktop's browser client when it is not built yet (`npm run build:desktop` does the same). */
export async function ensureClientBuilt(): Promise<void> {
  if (existsSync(`${ROOT}web-desktop/dist-client/index.html`)) return;
  const r = await runProcess(process.execPath, [`${ROOT}node_modules/vite/bin/vite.js`, "build", "--config", `${ROOT}web-desktop/client/vite.config.ts`], { cwd: ROOT }).done;
  if (r.status !== 0) throw new Error(`vite build failed: ${r.stderr}`);
}
