// Builds the browser client into web-desktop/dist-client (served by web-desktop/server).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  plugins: [vue()],
  build: {
    outDir: fileURLToPath(new URL("../dist-client", import.meta.url)),
    emptyOutDir: true,
    // xterm.js alone is ~300 kB; one bundle for a desktop app is fine.
    chunkSizeWarningLimit: 1200,
  },
});
