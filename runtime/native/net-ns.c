/*
 * TCP sockets in another network namespace, for the netstack. A socket belongs to the namespace it was
 * created in, for its whole life, whatever the namespace of the process that later reads it. setns(2)
 * with CLONE_NEWNET changes only the calling thread's namespace (unlike a mount namespace, it is allowed
 * in a multi-threaded process), so a libuv worker thread enters the node's namespace, creates the
 * socket, and comes back before it takes other work (getaddrinfo runs on these threads too). Binding,
 * listening and connecting then work on the socket from anywhere.
 *
 * Both run on the main thread: bind and listen never wait, and a connect is non-blocking and watched on
 * libuv's loop (uv_poll) until it completes, so no worker thread is involved. A worker thread would add
 * two thread hops to each of the netstack's connection set-ups. Connections to a listening socket are
 * accepted on the loop too (acceptOn), so JavaScript can read them with a buffer of its own.
 */
#define _GNU_SOURCE
#include "napi-common.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

/*
 * A connect in progress: watched for writability, with a timeout; freed when both handles closed. The
 * poll watches a dup of the socket: closing a uv_poll removes its fd from epoll, and by then the socket's
 * own fd belongs to the net.Socket that JavaScript made of it.
 */
typedef struct {
  uv_poll_t poll;
  uv_timer_t timer;
  int open_handles;
  int fd;
  int poll_fd;
  JsCallback done;
} Pending;

/* socket(2) in the namespace `ns_fd`; the calling thread is back in its own namespace on return. */
static int socket_in(int ns_fd, int family) {
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return -1;
  if (setns(ns_fd, CLONE_NEWNET) != 0) {
    int e = errno;
    close(home);
    errno = e;
    return -1;
  }
  int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int e = errno;
  /* A worker thread left in the node's namespace would resolve names there: never carry on. */
  if (setns(home, CLONE_NEWNET) != 0) abort();
  close(home);
  errno = e;
  return s;
}

static void throw_errno(napi_env env, int e) { napi_throw(env, errno_error(env, NULL, e, NULL)); }

/* A uv_poll on `fd` and a uv_timer on the loop, both with `data`; false (nothing to close) if the poll cannot be made. */
static int init_watch(napi_env env, uv_poll_t *poll, uv_timer_t *timer, int fd, void *data) {
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  if (uv_poll_init(loop, poll, fd) != 0) return 0;
  uv_timer_init(loop, timer);
  poll->data = data;
  timer->data = data;
  return 1;
}

/* A listening socket on [::]:port (IPv4 too), or 0.0.0.0 where IPv6 is off; -1 with errno. */
static int listen_in(int ns_fd, int port, int backlog) {
  int s = socket_in(ns_fd, AF_INET6);
  if (s < 0 && errno == EAFNOSUPPORT) {
    s = socket_in(ns_fd, AF_INET);
    if (s < 0) goto fail;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) goto fail;
  } else {
    if (s < 0) goto fail;
    /* One socket for IPv6 and IPv4, any address: as a 0.0.0.0 bind would, it holds the port for both. */
    int zero = 0, one = 1;
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any};
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) goto fail;
  }
  if (listen(s, backlog) != 0) goto fail;
  fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
  return s;
fail:;
  int e = errno;
  if (s >= 0) close(s);
  errno = e;
  return -1;
}

/* listenIn(nsFd, port, backlog) -> fd; throws an Error whose message is the errno name (EADDRINUSE...). */
static napi_value ListenIn(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t ns_fd, port, backlog;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &ns_fd) != napi_ok || napi_get_value_int32(env, argv[1], &port) != napi_ok ||
      napi_get_value_int32(env, argv[2], &backlog) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "listenIn(nsFd, port, backlog)");
    return NULL;
  }
  int s = listen_in(ns_fd, port, backlog);
  if (s < 0) {
    throw_errno(env, errno);
    return NULL;
  }
  napi_value result;
  napi_create_int32(env, s, &result);
  return result;
}

static void on_pending_closed(uv_handle_t *handle) {
  Pending *p = handle->data;
  if (--p->open_handles > 0) return;
  close(p->poll_fd);
  free(p);
}

/* Calls back once (errno name or null, fd) and lets go of both handles. */
static void finish(Pending *p, int error) {
  if (uv_is_closing((uv_handle_t *)&p->poll)) return;
  uv_poll_stop(&p->poll);
  uv_timer_stop(&p->timer);
  napi_env env = p->done.env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[2];
  if (error == 0) {
    napi_get_null(env, &argv[0]);
    napi_create_int32(env, p->fd, &argv[1]);
  } else {
    close(p->fd);
    napi_create_string_utf8(env, errno_name(error), NAPI_AUTO_LENGTH, &argv[0]);
    napi_create_int32(env, -1, &argv[1]);
  }
  once_callback_call(&p->done, 2, argv);
  napi_close_handle_scope(env, scope);
  uv_close((uv_handle_t *)&p->poll, on_pending_closed);
  uv_close((uv_handle_t *)&p->timer, on_pending_closed);
}

static void on_writable(uv_poll_t *poll, int status, int events) {
  (void)events;
  Pending *p = poll->data;
  int error = 0;
  socklen_t len = sizeof error;
  /* A failed connect shows as POLLERR, which libuv reports as a bad status: the cause is in SO_ERROR. */
  if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
  else if (error == 0 && status < 0) error = EIO;
  finish(p, error);
}

/* A full backlog makes the kernel retry the SYN for minutes: the caller's bound ends it. */
static void on_timeout(uv_timer_t *timer) { finish(timer->data, ETIMEDOUT); }

/*
 * connectIn(nsFd, host, port, timeoutMs, callback(code, fd)): host is a numeric IPv4 or IPv6 address.
 * Returns the fd when connected at once, and throws when refused at once (the callback is then never
 * called); otherwise the callback gets (null, fd) once connected, or (errno name, -1). Throws at once if no socket can be
 * made or the connect fails before it starts (then the callback is never called).
 */
static napi_value ConnectIn(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t ns_fd, port, timeout_ms;
  char host[INET6_ADDRSTRLEN];
  size_t len = 0;
  napi_valuetype type = napi_undefined;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &ns_fd) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], host, sizeof host, &len) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || napi_get_value_int32(env, argv[3], &timeout_ms) != napi_ok ||
      napi_typeof(env, argv[4], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "EINVAL", "connectIn(nsFd, host, port, timeoutMs, callback)");
    return NULL;
  }
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port)};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
  int v6 = strchr(host, ':') != NULL;
  if ((v6 ? inet_pton(AF_INET6, host, &a6.sin6_addr) : inet_pton(AF_INET, host, &a4.sin_addr)) != 1) {
    throw_errno(env, EINVAL);
    return NULL;
  }
  int s = socket_in(ns_fd, v6 ? AF_INET6 : AF_INET);
  if (s < 0) {
    throw_errno(env, errno);
    return NULL;
  }
  fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = v6 ? connect(s, (struct sockaddr *)&a6, sizeof a6) : connect(s, (struct sockaddr *)&a4, sizeof a4);
  if (r != 0 && errno != EINPROGRESS) {
    int e = errno;
    close(s);
    throw_errno(env, e);
    return NULL;
  }
  /*
   * On loopback the handshake is usually over by the time connect() returns (the kernel runs both
   * ends in this call): then the fd comes back at once, a turn of the loop sooner than a poll would say.
   */
  struct pollfd ready = {.fd = s, .events = POLLOUT};
  if (r != 0 && poll(&ready, 1, 0) == 1) {
    /* Done either way: connected, or refused (reading SO_ERROR clears it, so it is reported here). */
    int error = 0;
    socklen_t error_len = sizeof error;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &error, &error_len) != 0) error = errno;
    else if (error == 0 && (ready.revents & (POLLERR | POLLHUP)) != 0) error = ECONNREFUSED;
    if (error != 0) {
      close(s);
      throw_errno(env, error);
      return NULL;
    }
    r = 0;
  }
  if (r == 0) {
    napi_value fd;
    napi_create_int32(env, s, &fd);
    return fd;
  }
  Pending *p = calloc(1, sizeof(Pending));
  p->fd = s;
  p->poll_fd = fcntl(s, F_DUPFD_CLOEXEC, 0);
  if (p->poll_fd < 0 || !init_watch(env, &p->poll, &p->timer, p->poll_fd, p)) {
    if (p->poll_fd >= 0) close(p->poll_fd);
    close(s);
    free(p);
    throw_errno(env, EIO);
    return NULL;
  }
  p->open_handles = 2;
  js_callback_init(&p->done, env, argv[4], "oneos-connect-in");
  /* Connected at once or not: writability (or an error) is reported on the loop, never synchronously. */
  uv_poll_start(&p->poll, UV_WRITABLE, on_writable);
  uv_timer_start(&p->timer, on_timeout, (uint64_t)(timeout_ms > 0 ? timeout_ms : 1), 0);
  return NULL;
}

/*
 * A listening socket's connections, accepted on libuv's loop. Each new socket's fd goes to JavaScript,
 * which wraps it in a net.Socket with `onread`: Node offers no `onread` for the sockets a net.Server
 * accepts, and reads those 64 KiB at a time, each into a fresh buffer. The acceptor owns the listening
 * fd and closes it when stopped.
 */
typedef struct {
  uv_poll_t poll;
  uv_timer_t pause;
  int fd;
  int stopped;
  /* Freed when both handles have closed and the JS stop function has been collected. */
  int open_handles;
  int stop_collected;
  JsCallback on_connection;
} Acceptor;

/** Accepts at most this many per wake-up, so one busy port does not hold the loop. */
#define ACCEPT_BATCH 64
/** Out of descriptors (EMFILE): stop accepting this long instead of spinning on a readable socket. */
#define ACCEPT_PAUSE_MS 100

static void free_when_unused(Acceptor *a) {
  if (a->open_handles == 0 && a->stop_collected) free(a);
}

/** Most first bytes read with the accept (a netstack connect request carries at most 64 KiB). */
#define FIRST_BYTES 65536

/*
 * Hands a new fd (or a negative errno) to JavaScript, with what the client had already sent (null if
 * nothing); false if the callback threw (the fd is then closed).
 */
static int call_acceptor(Acceptor *a, int value, const char *first, ssize_t first_length) {
  napi_env env = a->on_connection.env;
  napi_value argv[2];
  napi_create_int32(env, value, &argv[0]);
  if (first_length > 0) napi_create_buffer_copy(env, (size_t)first_length, first, NULL, &argv[1]);
  else napi_get_null(env, &argv[1]);
  if (js_callback_call(&a->on_connection, 2, argv)) return 1;
  if (value >= 0) close(value);
  return 0;
}

static void on_resume(uv_timer_t *timer);

static void on_acceptable(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  Acceptor *a = poll->data;
  static char first[FIRST_BYTES];
  napi_handle_scope scope;
  napi_open_handle_scope(a->on_connection.env, &scope);
  for (int i = 0; i < ACCEPT_BATCH && !a->stopped; i++) {
    int c = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      /* EMFILE, ENFILE, ENOBUFS...: say so (negative errno) and wait before trying again. */
      int e = errno;
      uv_poll_stop(&a->poll);
      uv_timer_start(&a->pause, on_resume, ACCEPT_PAUSE_MS, 0);
      call_acceptor(a, -e, NULL, 0);
      break;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /*
     * Most clients speak at once, and their first bytes are often here by now: taken with the accept,
     * they save JavaScript a turn of the loop before it can ask the port's owner. A client that reset
     * already is simply dropped; an end (0) is read again by the socket.
     */
    ssize_t n = recv(c, first, sizeof first, MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      close(c);
      continue;
    }
    call_acceptor(a, c, first, n);
  }
  napi_close_handle_scope(a->on_connection.env, scope);
}

static void on_resume(uv_timer_t *timer) {
  Acceptor *a = timer->data;
  if (!a->stopped) uv_poll_start(&a->poll, UV_READABLE, on_acceptable);
}

static void on_acceptor_handle_closed(uv_handle_t *handle) {
  Acceptor *a = handle->data;
  if (--a->open_handles > 0) return;
  close(a->fd);
  js_callback_release(&a->on_connection);
  free_when_unused(a);
}

/* The JS `stop()` of one acceptor: ends accepting and closes the listening socket. A second call does nothing. */
static napi_value StopAccepting(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, NULL, NULL, &data);
  Acceptor *a = data;
  if (a->stopped) return NULL;
  a->stopped = 1;
  uv_poll_stop(&a->poll);
  uv_timer_stop(&a->pause);
  uv_close((uv_handle_t *)&a->poll, on_acceptor_handle_closed);
  uv_close((uv_handle_t *)&a->pause, on_acceptor_handle_closed);
  return NULL;
}

/* The stop function was collected: it no longer holds the acceptor. */
static void on_stop_finalized(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Acceptor *a = data;
  a->stop_collected = 1;
  free_when_unused(a);
}

/*
 * acceptOn(listenFd, onConnection(fd, firstBytes)) -> stop(): each accepted connection's fd (non-blocking,
 * close-on-exec, TCP_NODELAY) and the bytes the client had sent by then (a Buffer of at most 64 KiB, or
 * null), or a negative errno (and null) when accepting failed for a while. stop() ends it
 * and closes listenFd. Throws (and closes listenFd) if the socket cannot be watched.
 */
static napi_value AcceptOn(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  napi_valuetype type = napi_undefined;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_typeof(env, argv[1], &type) != napi_ok ||
      type != napi_function) {
    napi_throw_type_error(env, "EINVAL", "acceptOn(listenFd, onConnection)");
    return NULL;
  }
  Acceptor *a = calloc(1, sizeof(Acceptor));
  a->fd = fd;
  if (!init_watch(env, &a->poll, &a->pause, fd, a)) {
    close(fd);
    free(a);
    throw_errno(env, EBADF);
    return NULL;
  }
  a->open_handles = 2;
  js_callback_init(&a->on_connection, env, argv[1], "oneos-accept");
  uv_poll_start(&a->poll, UV_READABLE, on_acceptable);
  napi_value stop;
  napi_create_function(env, "stop", NAPI_AUTO_LENGTH, StopAccepting, a, &stop);
  napi_add_finalizer(env, stop, a, on_stop_finalized, NULL, NULL);
  return stop;
}

void register_net_ns(napi_env env, napi_value exports) {
  export_function(env, exports, "listenIn", ListenIn);
  export_function(env, exports, "connectIn", ConnectIn);
  export_function(env, exports, "acceptOn", AcceptOn);
}
