#!/usr/bin/env node
/**
 * The `oneos` command. It runs the CLI from its one-file bundle (scripts/bundle-cli.mjs) with V8's
 * code cache: a verb then starts in about half the time that loading main.js's 150 modules takes
 * (#15: a CLI in kubectl time). Without a bundle (a build that skipped that step) it loads main.js.
 *
 * Node 20 has no `module.enableCompileCache`, and v8-compile-cache makes its cache before the code
 * runs, so it keeps only the top level. This cache is made when a verb's first successful run exits,
 * with every function that run compiled; each verb has its own, so `ps` does not load what the shell
 * compiled (V8 reads a whole cache at once). A read-only install just runs without one.
 */
import fs = require("node:fs");
import path = require("node:path");
import vm = require("node:vm");
import nodeModule = require("node:module");

const bundle = path.join(__dirname, "oneos-bundle.cjs");

function runBundle(): void {
  const verb = process.argv.slice(2).find((arg) => !arg.startsWith("-")) ?? "";
  // The bundler removes these files when it writes a new bundle; V8 rejects another V8's cache itself.
  const cacheFile = `${bundle}.${process.versions.v8}.${/^[a-z]{1,16}$/.test(verb) ? verb : "other"}.cache`;
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // no cache yet
  }
  const source = fs.readFileSync(bundle, "latin1").replace(/^#!/, "//");
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    ...(cachedData !== undefined ? { cachedData } : {}),
  });
  if (cachedData === undefined || script.cachedDataRejected === true) {
    process.once("exit", (status) => {
      if (status !== 0) return;
      const partial = `${cacheFile}.${process.pid}`;
      try {
        fs.writeFileSync(partial, script.createCachedData());
        fs.renameSync(partial, cacheFile);
      } catch {
        fs.rmSync(partial, { force: true });
      }
    });
  }
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  const module = { exports: {} };
  wrapper(module.exports, nodeModule.createRequire(bundle), module, bundle, __dirname);
}

if (fs.existsSync(bundle)) runBundle();
else void import("./main.js");
