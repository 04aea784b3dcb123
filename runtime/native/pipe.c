/*
 * pipe2(2) for the runtime. Node gives child processes socketpairs, not pipes: a program whose reader
 * went away then sees ECONNRESET instead of dying by SIGPIPE, and `stat` shows a socket. Children of
 * oneos get real pipes, created here, exactly as a local shell would give them.
 */
#define _GNU_SOURCE
#include "napi-common.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* pipe(size?) -> [readFd, writeFd], both close-on-exec (spawn's dup2 clears it on the child's copy). */
static napi_value Pipe(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    napi_throw_error(env, errno == EMFILE || errno == ENFILE ? "EMFILE" : "EIO", strerror(errno));
    return NULL;
  }
  if (argc >= 1) {
    int32_t size = 0;
    if (napi_get_value_int32(env, argv[0], &size) == napi_ok && size > 0) {
      /* Best effort: an unprivileged process may be capped by /proc/sys/fs/pipe-max-size. */
      (void)fcntl(fds[1], F_SETPIPE_SZ, size);
    }
  }
  napi_value result, r, w;
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, fds[0], &r);
  napi_create_int32(env, fds[1], &w);
  napi_set_element(env, result, 0, r);
  napi_set_element(env, result, 1, w);
  return result;
}

void register_as_user(napi_env env, napi_value exports);
void register_spawn(napi_env env, napi_value exports);
void register_net_ns(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  register_as_user(env, exports);
  register_spawn(env, exports);
  register_net_ns(env, exports);
  export_function(env, exports, "pipe", Pipe);
  return exports;
}
