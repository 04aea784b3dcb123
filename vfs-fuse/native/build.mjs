#!/usr/bin/env node
// Builds CloudFS's fuse-native: the stock fuse-native 2.2.6 (MIT) with two additions.
// - The caller's uid/gid. fuse-native never passes fuse_get_context() to JavaScript, so files created
//   through a stock mount belong to root. The patch records the context on the FUSE worker thread for
//   every operation (FUSE_NATIVE_HANDLER runs there) and adds `binding.fuse_native_caller(handle)`,
//   which index.js calls when it dispatches an operation (setting `fuse.caller = [uid, gid, pid, opcode, unique]`; the
//   pid is the calling thread's, in the mounter's PID namespace).
// - Attributes with the answer. libfuse 2's high-level API asks for a node's attributes right after
//   it changed or made it (SETATTR: chmod/chown/utimens/truncate, then getattr; CREATE and OPEN with
//   auto_cache: fgetattr; MKDIR, SYMLINK, LINK: getattr), each a second trip from the FUSE thread to
//   JavaScript and back. \`fuse.answerWithStat(path, stat, answer)\` hands the attributes over with the
//   answer; the FUSE thread keeps them for its very next operation only, and a getattr/fgetattr of that
//   same path is answered from them (what the low-level API's replies carry anyway).
// - utimens with the times as given: stock fuse-native hands JavaScript the atime twice (as atime and
//   as mtime), in ms, and turns UTIME_OMIT and UTIME_NOW into nonsense times. Here a time to keep comes
//   as 2^64 - 1 (JavaScript sees a number >= 2^63), UTIME_NOW as the current time, and each time's
//   nanoseconds within its ms in `fuse.utimeNs` while the op starts; attributes carry them too
//   (getStatArray).
// - Interrupts: the kernel's FUSE_INTERRUPT for a request (a signal came to its caller) is kept by
//   kernel-channel.c, the request's id comes with the caller, and `fuse.interrupted(unique)` tells a
//   lock request JavaScript keeps waiting that it is to end with EINTR.
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
  "  int32_t res;\n  uid_t caller_uid;\n  gid_t caller_gid;\n  pid_t caller_pid;\n  uint32_t caller_opcode;\n  uint64_t caller_unique;\n  int cfs_post_valid;\n  struct stat cfs_post_stat;\n  char cfs_post_path[4096];\n",
);
c = patch(
  c,
  "  l->op = op_##name;\\\n",
  "  l->op = op_##name;\\\n  { struct fuse_context *cfs_ctx = fuse_get_context(); l->caller_uid = cfs_ctx->uid; l->caller_gid = cfs_ctx->gid; l->caller_pid = cfs_ctx->pid; l->caller_opcode = cfs_request_opcode; l->caller_unique = cfs_request_unique; }\\\n" +
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
  napi_value arr, u, g, p, o, q;
  napi_create_array_with_length(env, 5, &arr);
  napi_create_uint32(env, l->caller_uid, &u);
  napi_create_uint32(env, l->caller_gid, &g);
  napi_create_int32(env, l->caller_pid, &p);
  napi_set_element(env, arr, 0, u);
  napi_set_element(env, arr, 1, g);
  napi_set_element(env, arr, 2, p);
  napi_create_uint32(env, l->caller_opcode, &o);
  napi_set_element(env, arr, 3, o);
  napi_create_double(env, (double) l->caller_unique, &q);
  napi_set_element(env, arr, 4, q);
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
  NAPI_EXPORT_FUNCTION(fuse_native_interrupted)
  NAPI_EXPORT_FUNCTION(fuse_native_invalidate_entry)
`,
);

// utimens: each time as ms (a uint64 in two ints, as stock) and the nanoseconds within that ms; the
// attributes' times likewise (getStatArray's ints 18-20 below), so `touch -d` keeps nanoseconds.
c = patch(c, "  int cfs_post_valid;\n", "  int cfs_post_valid;\n  uint32_t cfs_atime_ns;\n  uint32_t cfs_mtime_ns;\n");
c = patch(
  c,
  "  l->atime = timespec_to_uint64(&tv[0]);\n  l->mtime = timespec_to_uint64(&tv[1]);\n",
  // (no comma outside parentheses: this is a macro's argument)
  "  struct timespec cfs_tv[2];\n  cfs_tv[0] = cfs_utime(&tv[0]);\n  cfs_tv[1] = cfs_utime(&tv[1]);\n" +
    "  l->atime = cfs_tv[0].tv_nsec == UTIME_OMIT ? UINT64_MAX : timespec_to_uint64(&cfs_tv[0]);\n" +
    "  l->mtime = cfs_tv[1].tv_nsec == UTIME_OMIT ? UINT64_MAX : timespec_to_uint64(&cfs_tv[1]);\n" +
    "  l->cfs_atime_ns = cfs_tv[0].tv_nsec == UTIME_OMIT ? 0 : cfs_tv[0].tv_nsec % 1000000;\n" +
    "  l->cfs_mtime_ns = cfs_tv[1].tv_nsec == UTIME_OMIT ? 0 : cfs_tv[1].tv_nsec % 1000000;\n",
);
c = patch(c, "FUSE_METHOD_VOID(utimens, 5, 0,", "FUSE_METHOD_VOID(utimens, 7, 0,");
c = patch(
  c,
  "  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)\n",
  "  FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)\n  napi_create_uint32(env, l->cfs_atime_ns, &(argv[7]));\n  napi_create_uint32(env, l->cfs_mtime_ns, &(argv[8]));\n",
);
c = patch(
  c,
  "  uint32s_to_timespec(&stat->st_ctim, &ints);\n#endif\n",
  "  uint32s_to_timespec(&stat->st_ctim, &ints);\n  stat->st_atim.tv_nsec += ints[0];\n  stat->st_mtim.tv_nsec += ints[1];\n  stat->st_ctim.tv_nsec += ints[2];\n#endif\n",
);
c = patch(
  c,
  "static void populate_stat (uint32_t *ints, struct stat* stat) {\n",
  `/* A utimens time as given; UTIME_OMIT stays (keep it); UTIME_NOW: now. */
static struct timespec cfs_utime (const struct timespec* ts) {
  if (ts->tv_nsec != UTIME_NOW) return *ts;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return now;
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

// Locks (POSIX fcntl and OFD locks through `lock`, flock(2) through `flock`): fuse-native has neither,
// so the kernel kept each node's locks to itself. With them, libfuse 2 hands every lock request to
// JavaScript (vfs-fuse/locks.ts keeps them across nodes) with the kernel's lock owner. libfuse also
// asks `lock` to drop the owner's POSIX locks at every close (FLUSH): until this mount has granted a
// POSIX lock, that unlock is answered here, on the FUSE thread, so a close costs no extra trip.
c = patch(c, "static const uint32_t op_rmdir = 33;\n", "static const uint32_t op_rmdir = 33;\nstatic const uint32_t op_lock = 34;\nstatic const uint32_t op_flock = 35;\n");
c = patch(c, "  napi_ref handlers[35];\n", "  napi_ref handlers[36];\n");
c = patch(c, "  for (int i = 0; i < 35; i++) {\n", "  for (int i = 0; i < 36; i++) {\n");
c = patch(c, "  int cfs_post_valid;\n", "  int cfs_post_valid;\n  int lk_cmd;\n  struct flock *lk;\n  uint64_t lk_owner;\n");
c = patch(
  c,
  "static void fuse_native_dispatch_init (uv_async_t* handle, fuse_thread_locals_t* l, fuse_thread_t* ft) {\\\n",
  `static volatile int cfs_posix_locks_granted = 0;

static void cfs_owner_argv (napi_env env, uint64_t owner, napi_value *out) {
  char text[24];
  snprintf(text, sizeof(text), "%llu", (unsigned long long) owner);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, out);
}

FUSE_METHOD(lock, 7, 4, (const char *path, struct fuse_file_info *info, int cmd, struct flock *lock), {
  if (cmd == F_SETLK && lock->l_type == F_UNLCK && !cfs_posix_locks_granted) return 0;
  l->path = path;
  l->info = info;
  l->lk_cmd = cmd;
  l->lk = lock;
  l->lk_owner = info->lock_owner;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->info->fh, &(argv[3]));
  napi_create_int32(env, l->lk_cmd == F_GETLK ? 0 : l->lk_cmd == F_SETLK ? 1 : 2, &(argv[4]));
  napi_create_int32(env, l->lk->l_type == F_RDLCK ? 0 : l->lk->l_type == F_WRLCK ? 1 : 2, &(argv[5]));
  napi_create_double(env, (double) l->lk->l_start, &(argv[6]));
  napi_create_double(env, (double) l->lk->l_len, &(argv[7]));
  cfs_owner_argv(env, l->lk_owner, &(argv[8]));
}, {
  /* The conflicting lock of a GETLK: type (0 read, 1 write, 2 none), start, length, pid. */
  NAPI_ARGV_INT32(type, 2)
  NAPI_ARGV_INT32(pid, 5)
  double start = 0;
  double len = 0;
  napi_get_value_double(env, argv[3], &start);
  napi_get_value_double(env, argv[4], &len);
  if (res == 0 && l->lk_cmd == F_GETLK) {
    l->lk->l_type = type == 0 ? F_RDLCK : type == 1 ? F_WRLCK : F_UNLCK;
    if (type != 2) {
      l->lk->l_whence = SEEK_SET;
      l->lk->l_start = (off_t) start;
      l->lk->l_len = (off_t) len;
      l->lk->l_pid = pid;
    }
  }
  if (res == 0 && l->lk_cmd != F_GETLK && l->lk->l_type != F_UNLCK) cfs_posix_locks_granted = 1;
})

FUSE_METHOD_VOID(flock, 4, 0, (const char *path, struct fuse_file_info *info, int op), {
  l->path = path;
  l->info = info;
  l->lk_cmd = op;
  l->lk_owner = info->lock_owner;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->info->fh, &(argv[3]));
  napi_create_int32(env, l->lk_cmd, &(argv[4]));
  cfs_owner_argv(env, l->lk_owner, &(argv[5]));
})

static void fuse_native_dispatch_init (uv_async_t* handle, fuse_thread_locals_t* l, fuse_thread_t* ft) {\\
`,
);
c = patch(c, "  if (implemented[op_rmdir]) ops.rmdir = fuse_native_rmdir;\n", "  if (implemented[op_rmdir]) ops.rmdir = fuse_native_rmdir;\n  if (implemented[op_lock]) ops.lock = fuse_native_lock;\n  if (implemented[op_flock]) ops.flock = fuse_native_flock;\n");
c = patch(c, "  NAPI_EXPORT_FUNCTION(fuse_native_signal_rmdir)\n", "  NAPI_EXPORT_FUNCTION(fuse_native_signal_rmdir)\n  NAPI_EXPORT_FUNCTION(fuse_native_signal_lock)\n  NAPI_EXPORT_FUNCTION(fuse_native_signal_flock)\n");
c = patch(c, "  NAPI_EXPORT_UINT32(op_rmdir)\n", "  NAPI_EXPORT_UINT32(op_rmdir)\n  NAPI_EXPORT_UINT32(op_lock)\n  NAPI_EXPORT_UINT32(op_flock)\n");
// create(path, mode, flags): the open flags too. The kernel sends CREATE for every open(O_CREAT) of a
// name its lookup did not find; when another node made the name meanwhile, only O_EXCL may fail.
c = patch(
  c,
  "FUSE_METHOD(create, 2, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {\n",
  "FUSE_METHOD(create, 3, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {\n",
);
c = patch(
  c,
  "  napi_create_uint32(env, l->mode, &(argv[3]));\n}, {\n  NAPI_ARGV_INT32(fd, 2)\n",
  "  napi_create_uint32(env, l->mode, &(argv[3]));\n  napi_create_uint32(env, l->info->flags, &(argv[4]));\n}, {\n  NAPI_ARGV_INT32(fd, 2)\n",
);
// libfuse 2's high-level API leaves the flock unlock of a last close to the file system's release
// (fi->flock_release): it is asked of `flock` first, as a LOCK_UN (8) of the file's owner.
c = patch(
  c,
  "FUSE_METHOD_VOID(release, 2, 0, (const char *path, struct fuse_file_info *info), {\n  l->path = path;\n",
  "static int fuse_native_flock (const char *path, struct fuse_file_info *info, int op);\n\n" +
    "FUSE_METHOD_VOID(release, 2, 0, (const char *path, struct fuse_file_info *info), {\n" +
    "  if (info != NULL && info->flock_release) {\n" +
    "    fuse_native_flock(path, info, 8);\n" +
    "    l->op = op_release;\n" +
    "    l->op_fn = fuse_native_dispatch_release;\n" +
    "  }\n" +
    "  l->path = path;\n",
);

// Paths and names cross in latin1, a character a byte, both ways (stock: UTF-8, which turned every
// byte that is not UTF-8 into U+FFFD): a name may be any bytes but `/` and NUL. fuse-ops.ts converts.
c = c.replaceAll("napi_create_string_utf8(env, l->", "napi_create_string_latin1(env, l->");
c = c.replaceAll("NAPI_UTF8(name, 1024, raw_name)", "NAPI_LATIN1(name, 1024, raw_name)");
c = c.replaceAll("NAPI_ARGV_UTF8(linkname, l->len, 2)", "NAPI_LATIN1(linkname, l->len, argv[2])");
c = patch(c, "napi_get_value_string_utf8(env, argv[1], l->cfs_post_path", "napi_get_value_string_latin1(env, argv[1], l->cfs_post_path");
c = patch(
  c,
  "#include <napi-macros.h>\n",
  `#include <napi-macros.h>

/* The opcode of the request this FUSE worker thread read last, and serves now (kernel-channel.c). */
static __thread uint32_t cfs_request_opcode;
/* Its unique id, which a FUSE_INTERRUPT names (fuse.caller[4]; fuse.interrupted(unique)). */
static __thread uint64_t cfs_request_unique;

#define NAPI_LATIN1(name, size, val) \\
  char name[size]; \\
  size_t name##_len; \\
  if (napi_get_value_string_latin1(env, val, (char *) &name, size, &name##_len) != napi_ok) { \\
    napi_throw_error(env, "EINVAL", "Expected string"); \\
    return NULL; \\
  }
`,
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
js = patch(
  js,
  "  _op_utimens (signal, path, atimeLow, atimeHigh, mtimeLow, mtimeHigh) {\n",
  "  _op_utimens (signal, path, atimeLow, atimeHigh, mtimeLow, mtimeHigh, atimeNs, mtimeNs) {\n",
);
// (read by the op when it starts, as `caller`: the op keeps stock fuse-native's signature)
js = patch(js, "    this.ops.utimens(path, atime, mtime, err => {\n", "    this.utimeNs = [atimeNs, mtimeNs]\n    this.ops.utimens(path, atime, mtime, err => {\n");
js = patch(js, "  const ints = new Uint32Array(18)\n", "  const ints = new Uint32Array(21)\n");
js = patch(
  js,
  "  setDoubleInt(ints, 16, toDateMS(stat && stat.ctime))\n",
  "  setDoubleInt(ints, 16, toDateMS(stat && stat.ctime))\n  ints[18] = (stat && stat.atimeNs) || 0\n  ints[19] = (stat && stat.mtimeNs) || 0\n  ints[20] = (stat && stat.ctimeNs) || 0\n",
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

  interrupted (unique) {
    return this._thread !== null && binding.fuse_native_interrupted(this._thread, unique)
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
js = patch(
  js,
  "  ['rmdir', {\n    op: binding.op_rmdir\n  }]\n])\n",
  "  ['rmdir', {\n    op: binding.op_rmdir\n  }],\n  ['lock', {\n    op: binding.op_lock,\n    defaults: [2, 0, 0, 0]\n  }],\n  ['flock', {\n    op: binding.op_flock\n  }]\n])\n",
);
js = patch(js, "    const implemented = new Uint32Array(35)\n", "    const implemented = new Uint32Array(36)\n");
js = patch(
  js,
  "  _op_create (signal, path, mode) {\n    this.ops.create(path, mode, (err, fd) => {\n",
  "  _op_create (signal, path, mode, flags) {\n    this.ops.create(path, mode, flags, (err, fd) => {\n",
);
// lock(path, fd, cmd (0 get, 1 set, 2 set and wait), type (0 read, 1 write, 2 unlock), start, len, owner, cb)
// answers cb(err, type, start, len, pid) for a get; flock(path, fd, op (LOCK_SH/EX/UN | LOCK_NB), owner, cb).
js = patch(
  js,
  "  _op_rmdir (signal, path) {\n",
  `  _op_lock (signal, path, fd, cmd, type, start, len, owner) {
    this.ops.lock(path, fd, cmd, type, start, len, owner, (err, ltype, lstart, llen, lpid) => {
      return signal(err, ltype, lstart, llen, lpid)
    })
  }

  _op_flock (signal, path, fd, op, owner) {
    this.ops.flock(path, fd, op, owner, err => {
      return signal(err)
    })
  }

  _op_rmdir (signal, path) {\n`,
);
js = patch(js, "module.exports = Fuse\n", "// Paths and names are latin1 strings, a character a byte (see build.mjs).\nFuse.BYTE_NAMES = true\n\nmodule.exports = Fuse\n");
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
