#!/usr/bin/env node
// Builds CloudFS's fuse-native: the stock fuse-native 2.2.6 (MIT) with two additions.
// - The caller's uid/gid. fuse-native never passes fuse_get_context() to JavaScript, so files created
//   through a stock mount belong to root. The patch records the context on the FUSE worker thread for
//   every operation (FUSE_NATIVE_HANDLER runs there) and adds `binding.fuse_native_caller(handle)`,
//   which index.js calls when it dispatches an operation (setting `fuse.caller = [uid, gid, pid]`; the
//   pid is the calling thread's, in the mounter's PID namespace).
// - Attributes with the answer. libfuse 2's high-level API asks for a node's attributes right after
//   it changed or made it (SETATTR: chmod/chown/utimens/truncate, then getattr; CREATE and OPEN with
//   auto_cache: fgetattr; MKDIR, SYMLINK, LINK: getattr), each a second trip from the FUSE thread to
//   JavaScript and back. \`fuse.answerWithStat(path, stat, answer)\` hands the attributes over with the
//   answer; the FUSE thread keeps them for its very next operation only, and a getattr/fgetattr of that
//   same path is answered from them (what the low-level API's replies carry anyway).
// - utimens with the times as given: stock fuse-native hands JavaScript the atime twice (as atime and
//   as mtime), and turns UTIME_OMIT and UTIME_NOW into nonsense times. Here a time to keep comes as
//   2^64 - 1 (JavaScript sees a number >= 2^63) and UTIME_NOW as the current time.
// - Kernel cache invalidation (kernel-channel.c): the session reads /dev/fuse through a channel of
//   ours, which invalidates an inode's attributes on open and learns node ids, and `fuse.invalidate(ino)`
//   / `fuse.invalidateEntry(parentIno, name)` tell the kernel what the metadata watch saw change.
//   node vfs-fuse/native/build.mjs      (needs cc, make, python3, libfuse-dev, node headers)
// Output: vfs-fuse/native/out/{index.js,build/Release/fuse.node}; mount.ts falls back to the stock
// module (files owned by root) when it is missing.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "out");
const require = createRequire(import.meta.url);
const stock = dirname(require.resolve("fuse-native/package.json"));

function patch(text, from, to) {
  if (!text.includes(from)) throw new Error(`fuse-native changed: cannot find ${JSON.stringify(from)}`);
  return text.replace(from, to);
}

let c = readFileSync(join(stock, "fuse-native.c"), "utf8");
c = patch(
  c,
  "  int32_t res;\n",
  "  int32_t res;\n  uid_t caller_uid;\n  gid_t caller_gid;\n  pid_t caller_pid;\n  int cfs_post_valid;\n  struct stat cfs_post_stat;\n  char cfs_post_path[4096];\n",
);
c = patch(
  c,
  "  l->op = op_##name;\\\n",
  "  l->op = op_##name;\\\n  { struct fuse_context *cfs_ctx = fuse_get_context(); l->caller_uid = cfs_ctx->uid; l->caller_gid = cfs_ctx->gid; l->caller_pid = cfs_ctx->pid; }\\\n" +
    // Attributes handed over with the last answer serve this operation only, whatever it is.
    "  int cfs_post = l->cfs_post_valid; l->cfs_post_valid = 0; (void) cfs_post;\\\n",
);
c = patch(c, "  struct fuse_chan *ch;\n", "  struct fuse_chan *ch;\n  void *cfs;\n");
// getattr/fgetattr right after an operation that handed over the attributes of that very path.
const postHit = "  if (cfs_post && path != NULL && strcmp(l->cfs_post_path, path) == 0) { *stat = l->cfs_post_stat; return 0; }\n";
c = patch(
  c,
  "FUSE_METHOD(getattr, 1, 1, (const char *path, struct stat *stat), {\n",
  "FUSE_METHOD(getattr, 1, 1, (const char *path, struct stat *stat), {\n" + postHit,
);
c = patch(
  c,
  "FUSE_METHOD(fgetattr, 2, 1, (const char *path, struct stat *stat, struct fuse_file_info *info), {\n",
  "FUSE_METHOD(fgetattr, 2, 1, (const char *path, struct stat *stat, struct fuse_file_info *info), {\n" + postHit,
);
c = patch(c, "static void* start_fuse_thread (void *data) {\n", '#include "kernel-channel.c"\n\nstatic void* start_fuse_thread (void *data) {\n');
c = patch(
  c,
  "  struct fuse *fuse = fuse_new(ch, &args, &ops, sizeof(struct fuse_operations), ft);\n",
  `  cfs_chan_t *cfs = NULL;
  struct fuse_chan *served = cfs_chan_over(ch, &cfs);
  struct fuse *fuse = served == NULL ? NULL : fuse_new(served, &args, &ops, sizeof(struct fuse_operations), ft);
  if (fuse == NULL) cfs_shutdown(cfs); /* the channel's state is left, closed */
  ft->cfs = fuse == NULL ? NULL : cfs;
`,
);
// The notifiers stop once the loop has ended, before fuse_unmount closes the fd they write to.
c = patch(c, "  fuse_loop_mt(ft->fuse);\n", "  fuse_loop_mt(ft->fuse);\n  cfs_shutdown(ft->cfs);\n");
c = patch(
  c,
  "NAPI_INIT() {\n",
  `NAPI_METHOD(fuse_native_caller) {
  NAPI_ARGV(1)
  NAPI_ARGV_BUFFER_CAST(fuse_thread_locals_t *, l, 0);
  napi_value arr, u, g, p;
  napi_create_array_with_length(env, 3, &arr);
  napi_create_uint32(env, l->caller_uid, &u);
  napi_create_uint32(env, l->caller_gid, &g);
  napi_create_int32(env, l->caller_pid, &p);
  napi_set_element(env, arr, 0, u);
  napi_set_element(env, arr, 1, g);
  napi_set_element(env, arr, 2, p);
  return arr;
}

NAPI_METHOD(fuse_native_post_stat) {
  NAPI_ARGV(3)
  NAPI_ARGV_BUFFER_CAST(fuse_thread_locals_t *, l, 0);
  NAPI_ARGV_BUFFER_CAST(uint32_t *, ints, 2);
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[1], l->cfs_post_path, sizeof(l->cfs_post_path), &len) != napi_ok) return NULL;
  /* A path that did not fit is left to getattr. */
  if (len + 1 >= sizeof(l->cfs_post_path)) return NULL;
  memset(&l->cfs_post_stat, 0, sizeof(l->cfs_post_stat));
  populate_stat(ints, &l->cfs_post_stat);
  l->cfs_post_valid = 1;
  return NULL;
}

NAPI_INIT() {
  NAPI_EXPORT_FUNCTION(fuse_native_caller)
  NAPI_EXPORT_FUNCTION(fuse_native_post_stat)
  NAPI_EXPORT_FUNCTION(fuse_native_invalidate)
  NAPI_EXPORT_FUNCTION(fuse_native_invalidate_entry)
`,
);

c = patch(
  c,
  "  l->atime = timespec_to_uint64(&tv[0]);\n  l->mtime = timespec_to_uint64(&tv[1]);\n",
  "  l->atime = cfs_utime(&tv[0]);\n  l->mtime = cfs_utime(&tv[1]);\n",
);
c = patch(c, "  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)\n", "  FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)\n");
c = patch(
  c,
  "static void populate_stat (uint32_t *ints, struct stat* stat) {\n",
  `/* A utimens time in ms; UTIME_OMIT: UINT64_MAX (keep it); UTIME_NOW: now. */
static uint64_t cfs_utime (const struct timespec* ts) {
  if (ts->tv_nsec == UTIME_OMIT) return UINT64_MAX;
  if (ts->tv_nsec == UTIME_NOW) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return timespec_to_uint64(&now);
  }
  return timespec_to_uint64(ts);
}

static void populate_stat (uint32_t *ints, struct stat* stat) {\n`,
);

// The kernel asks for security.capability before every write (to drop set-uid and capabilities), and
// CloudFS keeps only user.* and trusted.* (core.ts: xattrName): anything else is refused here, on
// the FUSE thread, as core would refuse it, without a trip to JavaScript per write.
c = patch(
  c,
  "FUSE_METHOD(getxattr, 4, 1, (const char *path, const char *name, char *value, size_t size), {\n",
  "FUSE_METHOD(getxattr, 4, 1, (const char *path, const char *name, char *value, size_t size), {\n" +
    "  if (strncmp(name, \"user.\", 5) != 0 && strncmp(name, \"trusted.\", 8) != 0) return -EOPNOTSUPP;\n",
);

let js = readFileSync(join(stock, "index.js"), "utf8");
// getxattr/listxattr as Linux answers them: the exact size for a size probe, ERANGE for a buffer too
// small (stock fuse-native copied what fitted and claimed the rest, and added 128 bytes for macOS).
js = patch(
  js,
  "        value.copy(valueBuf)\n        return signal(value.length, valueBuf.buffer)\n",
  "        if (valueBuf.length > 0 && value.length > valueBuf.length) return signal(-34, valueBuf.buffer)\n        value.copy(valueBuf)\n        return signal(value.length, valueBuf.buffer)\n",
);
js = patch(
  js,
  "          size += 128 // fuse yells if we do not signal room for some mac stuff also\n          return signal(size, listBuf.buffer)\n        }\n",
  "          return signal(size, listBuf.buffer)\n        }\n        let need = 0\n        for (const name of list) need += Buffer.byteLength(name) + 1\n        if (need > listBuf.length) return signal(-34, listBuf.buffer)\n",
);
// Set by answerWithStat for the one answer it makes; a late answer (fuse-native's timeout answered
// first) never reaches signal, and answerWithStat clears it after.
js = patch(
  js,
  "      function signal (nativeHandler, err, ...args) {\n",
  `      function signal (nativeHandler, err, ...args) {
        const post = self.postStat
        self.postStat = undefined
        if (post !== undefined && err === 0) binding.fuse_native_post_stat(nativeHandler, post[0], getStatArray(post[1]))
`,
);
js = patch(js, "const binding = require('node-gyp-build')(__dirname)", "const binding = require(path.join(__dirname, 'build', 'Release', 'fuse.node'))");
js = patch(
  js,
  "      return function (nativeHandler, opCode, ...args) {\n",
  "      return function (nativeHandler, opCode, ...args) {\n        self.caller = binding.fuse_native_caller(nativeHandler)\n",
);
js = patch(
  js,
  "  _close (cb) {\n",
  `  answerWithStat (path, stat, answer) {
    this.postStat = [path, stat]
    try {
      answer()
    } finally {
      this.postStat = undefined
    }
  }

  invalidate (ino) {
    return this._thread !== null && binding.fuse_native_invalidate(this._thread, ino)
  }

  invalidateEntry (parentIno, name) {
    return this._thread !== null && binding.fuse_native_invalidate_entry(this._thread, parentIno, name)
  }

  _close (cb) {
`,
);
// `path` is required after `binding` in the stock file: hoist our use below its require.
js = patch(js, "const path = require('path')\n", "");
js = "const path = require('path')\n" + js;

const gyp = {
  targets: [
    {
      target_name: "fuse",
      // As fuse-native's own binding.gyp: these modules print their paths.
      include_dirs: [dirname(require.resolve("napi-macros")), `<!(node -e "require('fuse-shared-library/include')")`],
      libraries: [`<!(node -e "require('fuse-shared-library/lib')")`],
      sources: ["fuse-native.c"],
      cflags: ["-g", "-O3", "-Wall"],
    },
  ],
};

mkdirSync(out, { recursive: true });
writeFileSync(join(out, "fuse-native.c"), c);
writeFileSync(join(out, "semaphore.h"), readFileSync(join(stock, "semaphore.h")));
writeFileSync(join(out, "kernel-channel.c"), readFileSync(join(here, "kernel-channel.c")));
writeFileSync(join(out, "index.js"), js);
writeFileSync(join(out, "package.json"), JSON.stringify({ name: "fuse-native-cloudfs", private: true, main: "index.js" }));
writeFileSync(join(out, "binding.gyp"), JSON.stringify(gyp, null, 2));
const gypBin = join(dirname(require.resolve("node-gyp/package.json")), "bin", "node-gyp.js");
execFileSync(process.execPath, [gypBin, "rebuild", "--nodedir=/usr"], { cwd: out, stdio: "inherit" });
console.log(`built ${join(out, "build", "Release", "fuse.node")}`);
