/**
 * The web desktop: an express + WebSocket server and a Vue 3 client (terminal, files, processes, nodes)
 * over the kernel API. This file is the folder's whole public face.
 */
export { startDesktop, type DesktopHandle, type DesktopOptions } from "./server/start-desktop.js";
export { DEFAULT_UPLOAD_LIMIT_BYTES } from "./server/limits.js";
