#!/usr/bin/env node
// Bundles the built CLI (dist/cli/main.js and every module it loads, with the nats.js clients, msgpackr
// and commander) into one CommonJS file, dist/cli/oneos-bundle.cjs, which dist/cli/oneos.cjs starts
// with V8's code cache: a verb then loads one file instead of some 150 modules (#15: a CLI in kubectl time).
// Run after tsc (setup.sh and `npm run build` do).
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const out = join(dist, "cli", "oneos-bundle.cjs");

/**
 * `import.meta.url` of each bundled module stays its own file's URL in dist/, so what a module finds
 * beside itself (the native addons, fs-daemon.js, the desktop's client files) is found as before.
 * The shell's parser, which shell/syntax.ts loads with a `require` of its own (an ESM import of it
 * costs main.js a scan of its 1.5 MB), is bundled too: its compiled code is then in the code cache.
 */
const ownUrls = {
  name: "own-import-meta-url",
  setup(b) {
    b.onLoad({ filter: /\/dist\/.*\.js$/ }, (args) => {
      const contents = readFileSync(args.path, "utf8").replace('createRequire(import.meta.url)("mvdan-sh")', 'require("mvdan-sh")');
      if (!contents.includes("import.meta.url") && !contents.includes('require("mvdan-sh")')) return undefined;
      const own = JSON.stringify(relative(dirname(out), args.path));
      return {
        contents: contents.replaceAll("import.meta.url", `__oneosModuleUrl(${own})`),
        loader: "js",
      };
    });
  },
};

await build({
  entryPoints: [join(dist, "cli", "main.js")],
  outfile: out,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  // Native addons and what loads files by path or starts workers stay ordinary requires.
  external: ["fuse-native", "node-pty", "msgpackr-extract", "pino", "express", "ws", "vue"],
  plugins: [ownUrls],
  // Declared once at the bottom (hoisted), where `require` is the bundle's own: a module may call a local one `require`.
  footer: {
    js: 'function __oneosModuleUrl(own) { return require("node:url").pathToFileURL(require("node:path").join(__dirname, own)).href; }',
  },
  logLevel: "warning",
});
// ASCII only, so the launcher reads it as latin1 (a copy; a UTF-8 decode of it is 20 ms) and V8 keeps
// it in one byte a character. esbuild leaves non-ASCII in comments and regular expressions: a \u escape
// means the same character there, as in strings.
writeFileSync(out, readFileSync(out, "utf8").replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
// A new bundle makes the code cache of the old one wrong (V8 checks little more than the length).
for (const name of readdirSync(dirname(out))) {
  if (name.startsWith("oneos-bundle.cjs.") && name.endsWith(".cache")) rmSync(join(dirname(out), name), { force: true });
}
