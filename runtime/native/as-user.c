/*
 * File opens on behalf of a cluster user. The runtime runs as root; a shell's redirection (`> f`) or a
 * desktop upload must be checked against the user's uid and gid, exactly as the kernel would check the
 * user's own process. Linux keeps credentials per thread, and setfsuid/setfsgid/setgroups called as
 * raw syscalls change only the calling thread's: the open runs on a libuv worker thread under the
 * user's file-system identity and the thread gets root's back before it takes other work.
 */
#define _GNU_SOURCE
#include "napi-common.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  char *base; /* NULL, or a directory opened as root that `path` is relative to */
  int flags;
  int mode;
  int mkdir; /* 1: mkdir(path, mode) instead of open */
  uid_t uid;
  gid_t gid;
  int result; /* fd, or 0 for mkdir */
  int error;  /* errno, 0 if none */
} Job;

static void Execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  /*
   * The base (a CloudFS mount point inside the runtime's state directory) is opened as root: the user
   * is checked only from there on, as inside the node's namespace, where the mount is simply /home.
   */
  int dfd = AT_FDCWD;
  if (job->base != NULL) {
    dfd = open(job->base, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      job->error = errno;
      return;
    }
  }
  gid_t groups[1] = {job->gid};
  /* The thread's identity: no supplementary groups but the user's own, then gid, then uid. */
  if (syscall(SYS_setgroups, 1, groups) != 0) {
    job->error = errno;
    if (dfd != AT_FDCWD) close(dfd);
    return;
  }
  syscall(SYS_setfsgid, job->gid);
  syscall(SYS_setfsuid, job->uid);
  if ((uid_t)syscall(SYS_setfsuid, -1) != job->uid || (gid_t)syscall(SYS_setfsgid, -1) != job->gid) {
    job->error = EPERM;
  } else if (job->mkdir) {
    job->result = mkdirat(dfd, job->path, (mode_t)job->mode);
    job->error = job->result == 0 ? 0 : errno;
  } else {
    /*
     * Never wait in open(2): a FIFO without a peer would hold this worker thread (and four of them
     * all of libuv's file work). Opened non-blocking, then made blocking again for its user.
     */
    int nonblock = (job->flags & O_PATH) == 0 ? O_NONBLOCK : 0;
    job->result = openat(dfd, job->path, job->flags | nonblock | O_CLOEXEC, (mode_t)job->mode);
    job->error = job->result >= 0 ? 0 : errno;
    if (job->result >= 0 && nonblock != 0) {
      int fl = fcntl(job->result, F_GETFL);
      if (fl >= 0) fcntl(job->result, F_SETFL, fl & ~O_NONBLOCK);
    }
  }
  /* Back to root before the thread runs anything else. */
  syscall(SYS_setfsuid, 0);
  syscall(SYS_setfsgid, 0);
  syscall(SYS_setgroups, 0, NULL);
  if (dfd != AT_FDCWD) close(dfd);
}

static void Complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  if (status == napi_ok && job->error == 0) {
    napi_value value;
    napi_create_int32(env, job->result, &value);
    napi_resolve_deferred(env, job->deferred, value);
  } else {
    int e = job->error != 0 ? job->error : EIO;
    napi_reject_deferred(env, job->deferred, errno_error(env, NULL, e, NULL));
  }
  napi_delete_async_work(env, job->work);
  free(job->path);
  free(job->base);
  free(job);
}

/* openAs(path, flags, mode, uid, gid, base?) -> Promise<fd>;  mkdirAs(path, mode, uid, gid, base?) -> Promise<0> */

static napi_value Start(napi_env env, napi_callback_info info, int is_mkdir) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t want = is_mkdir ? 4 : 5;
  if (argc < want) {
    napi_throw_type_error(env, "EINVAL", "missing arguments");
    return NULL;
  }
  char *path = dup_string(env, argv[0]);
  if (path == NULL) {
    napi_throw_type_error(env, "EINVAL", "path must be a string");
    return NULL;
  }
  Job *job = calloc(1, sizeof(Job));
  job->path = path;
  int32_t flags = 0, mode = 0;
  uint32_t uid = 0, gid = 0;
  size_t i = 1;
  if (!is_mkdir) napi_get_value_int32(env, argv[i++], &flags);
  napi_get_value_int32(env, argv[i++], &mode);
  napi_get_value_uint32(env, argv[i++], &uid);
  napi_get_value_uint32(env, argv[i++], &gid);
  job->flags = flags;
  job->mode = mode;
  job->mkdir = is_mkdir;
  job->uid = uid;
  job->gid = gid;
  job->base = argc > want ? dup_string(env, argv[want]) : NULL;
  return queue_promise_work(env, "oneos-as-user", Execute, Complete, job, &job->deferred, &job->work);
}

static napi_value OpenAs(napi_env env, napi_callback_info info) { return Start(env, info, 0); }
static napi_value MkdirAs(napi_env env, napi_callback_info info) { return Start(env, info, 1); }

void register_as_user(napi_env env, napi_value exports) {
  export_function(env, exports, "openAs", OpenAs);
  export_function(env, exports, "mkdirAs", MkdirAs);
}
