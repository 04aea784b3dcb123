#!/usr/bin/env node
/**
 * CloudFS in its own process, so a slow file system never blocks the runtime's event loop:
 *   node dist/vfs-fuse/fs-daemon.js --nats URL[,URL…] --mount DIR --cache DIR [--cache-bytes N]
 *     [--node-id ID] [--replicas N] [--attr-timeout SECONDS] [--creds FILE] [--journal DIR] [--strict]
 * `--journal`: the node's journal and dirty blocks (default `<cache>-journal`), kept across restarts:
 * a daemon started again after a crash stores what the last one had not. `--strict`: close(2)
 * waits until JetStream has stored the file.
 * Prints one JSON line `{"ready":true,"mount":DIR}` once mounted; SIGTERM/SIGINT unmount cleanly and
 * exit 0. On a failure it prints `{"ready":false,"error":…}` and exits 1.
 */
import { parseArgs } from "node:util";
import { connectNats, loadCredentials } from "../pseudokernel/index.js";
import { DEFAULT_FUSE_TUNING, mountCloudFS, type CloudFsMount } from "./mount.js";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nats: { type: "string" },
      mount: { type: "string" },
      cache: { type: "string" },
      "cache-bytes": { type: "string" },
      "node-id": { type: "string" },
      replicas: { type: "string" },
      "attr-timeout": { type: "string" },
      // The node's credentials (nkey + CA): the daemon connects as its runtime's identity.
      creds: { type: "string" },
      journal: { type: "string" },
      strict: { type: "boolean" },
      // The node's data address: peers fetch its cached blocks over direct links to it.
      "data-host": { type: "string" },
    },
  });
  if (values.nats === undefined || values.mount === undefined || values.cache === undefined) {
    throw new Error("usage: fs-daemon --nats URL --mount DIR --cache DIR [--cache-bytes N]");
  }
  const nc = await connectNats({
    servers: values.nats.split(","),
    name: `cloudfs ${values.mount}`,
    credentials: values.creds === undefined ? undefined : await loadCredentials(values.creds),
    maxReconnectAttempts: -1,
    // The daemon never needs its own messages back (its change notices would only be dropped).
    noEcho: true,
  });
  let mount: CloudFsMount;
  try {
    mount = await mountCloudFS({
      nc,
      mountpoint: values.mount,
      cacheDir: values.cache,
      ...(values["cache-bytes"] !== undefined ? { cacheBytes: Number(values["cache-bytes"]) } : {}),
      ...(values["node-id"] !== undefined ? { nodeId: values["node-id"] } : {}),
      ...(values.replicas !== undefined ? { replicas: Number(values.replicas) } : {}),
      ...(values.journal !== undefined ? { journalDir: values.journal } : {}),
      ...(values.strict === true ? { strict: true } : {}),
      ...(values["data-host"] !== undefined ? { dataHost: values["data-host"] } : {}),
      // Overrides how long the kernel caches attributes. Only CloudFS's build of fuse-native tells the
      // kernel about changes: with the stock module, > 0 leaves sizes stale after another node's close.
      ...(values["attr-timeout"] !== undefined
        ? { tuning: { ...DEFAULT_FUSE_TUNING, attrTimeoutSec: Number(values["attr-timeout"]) } }
        : {}),
    });
  } catch (err) {
    await nc.close();
    throw err;
  }
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void (async () => {
      await mount.close();
      await nc.close();
      process.exit(0);
    })();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdout.write(JSON.stringify({ ready: true, mount: mount.mountpoint }) + "\n");
}

main().catch((err: unknown) => {
  process.stdout.write(JSON.stringify({ ready: false, error: String((err as Error).message ?? err) }) + "\n");
  process.exit(1);
});
