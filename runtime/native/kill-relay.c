/*
 * kill(2) across nodes. A process the runtime starts gets a seccomp filter (installed between clone
 * and exec, inherited by everything it forks) that hands the runtime, through seccomp user
 * notification, every kill(2) whose PID could be a cluster PID: 1 to LOCAL_PID_BASE - 1. The rest
 * (0 and negative PIDs: process groups; PIDs forked inside the node's namespace) never leave the
 * kernel. The runtime answers each: a PID of this node, or one the cluster does not know, goes on
 * to the kernel as it was (SECCOMP_USER_NOTIF_FLAG_CONTINUE); a PID on another node is signalled
 * there, as the caller's user, and the caller gets that node's answer (0, EPERM, ESRCH).
 *
 * Each filter has its own listener: the child sends it to the runtime over a socket pair before it
 * execs. The runtime watches it on its loop until no process uses the filter any more (POLLHUP).
 * Answers go by watch id, never by descriptor, so one that comes after its listener was closed
 * cannot reach another's.
 */
#define _GNU_SOURCE
#include "kill-relay.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

typedef struct KillWatch {
  uv_poll_t poll;
  int fd;
  uint32_t id;
  struct KillWatch *next;
} KillWatch;

static KillWatch *watches;
static uint32_t last_watch_id;
static JsCallback on_kill;
static int on_kill_set;

static KillWatch *find_watch(uint32_t id) {
  for (KillWatch *w = watches; w != NULL; w = w->next)
    if (w->id == id) return w;
  return NULL;
}

static void on_watch_closed(uv_handle_t *handle) {
  KillWatch *w = (KillWatch *)handle;
  close(w->fd);
  free(w);
}

static void stop_watch(KillWatch *w) {
  for (KillWatch **p = &watches; *p != NULL; p = &(*p)->next) {
    if (*p == w) {
      *p = w->next;
      break;
    }
  }
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_watch_closed);
}

/* The caller's real and effective uid, from /proc/PID/status; -1 if it is gone. */
static int caller_uids(pid_t pid, long *ruid, long *euid) {
  char path[64], text[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return -1;
  text[n] = '\0';
  char *line = strstr(text, "\nUid:");
  if (line == NULL || sscanf(line + 5, "%ld %ld", ruid, euid) != 2) return -1;
  return 0;
}

/* Answers at once, without JavaScript (the caller is gone, or nobody listens). */
static void answer(int fd, uint64_t id, int error, int go_on) {
  struct seccomp_notif_resp resp;
  memset(&resp, 0, sizeof resp);
  resp.id = id;
  resp.error = go_on ? 0 : -error;
  resp.flags = go_on ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
  ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

static void on_notification(uv_poll_t *handle, int status, int events) {
  (void)events;
  KillWatch *w = (KillWatch *)handle;
  if (status < 0) {
    stop_watch(w);
    return;
  }
  /*
   * libuv reports a hang-up as readable too, and NOTIF_RECV with nothing pending blocks: ask the
   * listener itself (POLLIN: a kill waits; POLLHUP: no process uses the filter any more).
   */
  struct pollfd ready = {.fd = w->fd, .events = POLLIN};
  if (poll(&ready, 1, 0) != 1 || (ready.revents & POLLIN) == 0) {
    if ((ready.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) stop_watch(w);
    return;
  }
  struct seccomp_notif req;
  memset(&req, 0, sizeof req);
  if (ioctl(w->fd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
    /* ENOENT: the caller died before we took it. Anything else: the filter has no users left. */
    if (errno != ENOENT && errno != EINTR) stop_watch(w);
    return;
  }
  long ruid = -1, euid = -1;
  int known = caller_uids((pid_t)req.pid, &ruid, &euid) == 0;
  /* The uids are the caller's only if it is still waiting for this answer (its PID was not reused). */
  if (ioctl(w->fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) != 0) return;
  if (!known || !on_kill_set) {
    answer(w->fd, req.id, 0, 1);
    return;
  }
  napi_env env = on_kill.env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[7];
  napi_create_uint32(env, w->id, &argv[0]);
  napi_create_bigint_uint64(env, req.id, &argv[1]);
  napi_create_int32(env, (int32_t)req.pid, &argv[2]);
  napi_create_int64(env, ruid, &argv[3]);
  napi_create_int64(env, euid, &argv[4]);
  napi_create_int32(env, (int32_t)req.data.args[0], &argv[5]);
  napi_create_int32(env, (int32_t)req.data.args[1], &argv[6]);
  if (!js_callback_call(&on_kill, 7, argv)) answer(w->fd, req.id, 0, 1);
  napi_close_handle_scope(env, scope);
}

void kill_listener_watch(napi_env env, int listener) {
  KillWatch *w = calloc(1, sizeof(KillWatch));
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  w->fd = listener;
  w->id = ++last_watch_id;
  if (uv_poll_init(loop, &w->poll, listener) != 0) {
    close(listener);
    free(w);
    return;
  }
  w->next = watches;
  watches = w;
  uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, on_notification);
}

/* onKill(fn): fn(watch, id, callerPid, ruid, euid, pid, signal) for each intercepted kill(2); answer with killReply. */
static napi_value OnKill(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value fn;
  napi_get_cb_info(env, info, &argc, &fn, NULL, NULL);
  if (on_kill_set) js_callback_release(&on_kill);
  js_callback_init(&on_kill, env, fn, "oneos-kill-relay");
  on_kill_set = 1;
  return NULL;
}

/*
 * killReply(watch, id, errno, goOn): the intercepted kill(2) returns 0 (errno 0), fails with errno, or
 * (goOn) goes on to the kernel as it was. False if the caller is no longer waiting.
 */
static napi_value KillReply(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  uint32_t watch = 0;
  uint64_t id = 0;
  int32_t error = 0;
  bool go_on = false, lossless = false;
  napi_get_value_uint32(env, args[0], &watch);
  napi_get_value_bigint_uint64(env, args[1], &id, &lossless);
  napi_get_value_int32(env, args[2], &error);
  napi_get_value_bool(env, args[3], &go_on);
  KillWatch *w = find_watch(watch);
  int ok = 0;
  if (w != NULL) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.error = go_on ? 0 : -error;
    resp.flags = go_on ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
    ok = ioctl(w->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0;
  }
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

/*
 * adoptKillListener(pid): takes a copy (pidfd_getfd) of the relay listener process `pid` holds open
 * (oneos-pidns enter keeps its program's) and watches it. False if it holds none (yet).
 */
static napi_value AdoptKillListener(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  int32_t pid = 0;
  napi_get_value_int32(env, arg, &pid);
  int adopted = 0;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", pid);
  DIR *dir = opendir(path);
  int pidfd = dir == NULL ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
  struct dirent *entry;
  while (pidfd >= 0 && !adopted && (entry = readdir(dir)) != NULL) {
    char link[400], target[64];
    snprintf(link, sizeof link, "%s/%s", path, entry->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (strcmp(target, "anon_inode:seccomp notify") != 0) continue;
    int fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(entry->d_name), 0);
    if (fd < 0) continue;
    kill_listener_watch(env, fd);
    adopted = 1;
  }
  if (pidfd >= 0) close(pidfd);
  if (dir != NULL) closedir(dir);
  napi_value result;
  napi_get_boolean(env, adopted, &result);
  return result;
}

void register_kill_relay(napi_env env, napi_value exports) {
  export_function(env, exports, "adoptKillListener", AdoptKillListener);
  export_function(env, exports, "onKill", OnKill);
  export_function(env, exports, "killReply", KillReply);
}
