import type { LocalCluster } from "../cluster/index.js";
import { KernelClient, loadCredentials } from "../pseudokernel/index.js";

/**
 * Gives a bench's shell-identity client a root session, as `oneos shell` gets one on the cluster
 * owner's machine: issued through the admin identity, which the shell identity may not use itself.
 */
export async function useRootSession(cluster: LocalCluster, kernel: KernelClient): Promise<void> {
  const admin = await KernelClient.connect((await cluster.anyUrl())!, {
    name: "oneos-bench-login",
    credentials: await loadCredentials(cluster.credentialsFile("admin")),
  });
  try {
    kernel.session = await admin.startSession({ type: "issue", user: "root" });
  } finally {
    await admin.close();
  }
}
