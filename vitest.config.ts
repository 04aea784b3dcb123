import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", "dist/**"],
    // Cluster tests start real nats-servers, runtimes and FUSE mounts: two cores take time.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Files run one at a time: each integration file starts its own cluster and the machine has 2 cores.
    fileParallelism: false,
    reporters: ["default"],
  },
});
