/*
 * Process creation for the runtime. Node's child_process forks the whole runtime, and fork(2) copies
 * its page tables: measured here, 1.8 ms for a 44 MiB process, 17.6 ms at 170 MiB — the runtime's own
 * size made up most of a remote `true`. posix_spawn(3) in glibc clones with CLONE_VM|CLONE_VFORK: no
 * copy, the same cost whatever the runtime's size. The child gets its own session and process group
 * (so a signal to -pid reaches everything it starts), stdio from the given descriptors, /dev/null for
 * the rest. Its exit is watched with a pidfd on libuv's loop: libuv reaps only children it spawned
 * itself, so nobody else waits for these.
 *
 * A child for a node's namespaces (its mount namespace, where CloudFS is /home, and its network
 * namespace) enters them itself, between clone and exec: no `nsenter` program to exec first (≈ 1.2 ms a
 * spawn here). glibc's posix_spawn has no such step, so that path clones on its own, as posix_spawn
 * does: CLONE_VM|CLONE_VFORK on a separate stack with every signal blocked, handlers reset in the
 * child, and only raw system calls there (glibc's setuid() would signal the parent's threads). It runs
 * on a libuv worker thread: vfork suspends the calling thread until the exec, and the child's chdir and
 * exec may wait on CloudFS (seconds during a JetStream election) — the event loop must not.
 */
#define _GNU_SOURCE
#include "napi-common.h"
#include "kill-relay.h"
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <linux/sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

typedef struct {
  uv_poll_t poll;
  int pidfd;
  pid_t pid;
  JsCallback on_exit;
} Watch;

/* What both spawn() and spawnIn() are given: the program, its arguments, environment, cwd and stdio. */
typedef struct {
  char *file;
  char **argv;
  char **envp;
  char *cwd; /* NULL: the runtime's */
  int fds[3]; /* -1: /dev/null */
  /*
   * `/bin/sh file args...`, for a file the kernel will not exec (ENOEXEC: a script without `#!`), as
   * execvp(3) and a shell do. Built with the command: a cloned child may not allocate. Its strings are argv's.
   */
  char **sh_argv;
} Command;

/* What a namespaced child does between clone and exec; `error` is its errno if a step failed. */
typedef struct {
  const Command *cmd;
  int mnt_fd;
  int net_fd;
  int uts_fd;
  /* A socket to send the kill relay's listener over (kill-relay.c), or -1 for no relay. */
  int relay_fd;
  /* The node's own block of cluster PIDs [from, to): kill(2) of them stays the kernel's. */
  uint32_t own_from, own_to;
  /* The child's PID in the PID namespace the worker thread entered (clone3 set_tid); 0: any. */
  pid_t set_tid;
  int set_ids;
  uid_t uid;
  gid_t gid;
  mode_t umask;
  volatile int error;
} Plan;

static int child_main(void *arg) {
  Plan *p = arg;
  const Command *c = p->cmd;
  /* Default dispositions (the runtime's handlers must not run here); every signal is still blocked. */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, NULL);
  if (setsid() < 0) goto fail;
  for (int i = 0; i < 3; i++) {
    /* Sources are the runtime's pipes and files (all above 2) or -1 for /dev/null. */
    int src = c->fds[i];
    if (src < 0) {
      src = open("/dev/null", O_RDWR);
      if (src < 0) goto fail;
      if (src != i && (dup2(src, i) < 0 || close(src) < 0)) goto fail;
    } else if (src == i) {
      if (fcntl(i, F_SETFD, 0) < 0) goto fail;
    } else if (dup2(src, i) < 0) {
      goto fail;
    }
  }
  if (p->mnt_fd >= 0 && setns(p->mnt_fd, CLONE_NEWNS) != 0) goto fail;
  if (p->net_fd >= 0 && setns(p->net_fd, CLONE_NEWNET) != 0) goto fail;
  if (p->uts_fd >= 0 && setns(p->uts_fd, CLONE_NEWUTS) != 0) goto fail;
  /* Before the ids are dropped: installing a filter without no_new_privs needs CAP_SYS_ADMIN. */
  if (p->relay_fd >= 0 && kill_filter_install(p->relay_fd, p->own_from, p->own_to) != 0) goto fail;
  if (c->cwd != NULL && chdir(c->cwd) != 0) goto fail;
  /* The user's own uid and gid and no supplementary groups, as `nsenter --setgid --setuid` gave. */
  if (p->set_ids && (syscall(SYS_setgroups, 0, NULL) != 0 || syscall(SYS_setgid, p->gid) != 0 || syscall(SYS_setuid, p->uid) != 0)) goto fail;
  sigset_t none;
  sigemptyset(&none);
  umask(p->umask);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, _NSIG / 8);
  execve(c->file, c->argv, c->envp);
  if (errno == ENOEXEC) execve("/bin/sh", c->sh_argv, c->envp);
fail:
  p->error = errno != 0 ? errno : EIO;
  _exit(127);
}

/*
 * clone3(2) for a CLONE_VM child on its own stack, which runs fn(arg) and exits with its result: the
 * child cannot return from the system call into C code, since that frame is on the parent's stack
 * (glibc's clone() does the same in assembly; glibc 2.36 exports no clone3). x86-64 only; elsewhere
 * ENOSYS, and the caller clones without a chosen PID.
 */
static pid_t clone3_run(struct clone_args *args, int (*fn)(void *), void *arg) {
#if defined(__x86_64__)
  long ret;
  register void *r12 __asm__("r12") = (void *)fn;
  register void *r13 __asm__("r13") = arg;
  __asm__ volatile(
      "syscall\n\t"
      "testq %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      /* The child: its stack pointer is the new stack's top (16-byte aligned). */
      "xorl %%ebp, %%ebp\n\t"
      "movq %%r13, %%rdi\n\t"
      "callq *%%r12\n\t"
      "movl %%eax, %%edi\n\t"
      "movl $60, %%eax\n\t" /* exit */
      "syscall\n\t"
      "hlt\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "0"((long)SYS_clone3), "D"(args), "S"(sizeof *args), "r"(r12), "r"(r13)
      : "rcx", "r11", "memory", "cc");
  if (ret < 0) {
    errno = (int)-ret;
    return -1;
  }
  return (pid_t)ret;
#else
  (void)args;
  (void)fn;
  (void)arg;
  errno = ENOSYS;
  return -1;
#endif
}

/* Clones a child that runs `plan`; its pid, or -1 with errno (also when the child failed before exec). */
static pid_t spawn_in_namespaces(Plan *plan) {
  const size_t stack_size = 256 * 1024;
  void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  plan->error = 0;
  /* CLONE_VFORK: we resume once the child has exec'd or exited; its stack is ours to free then. */
  pid_t pid = -1;
  int clone_errno = ENOSYS;
  if (plan->set_tid > 0) {
    pid_t tid[1] = {plan->set_tid};
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_VM | CLONE_VFORK;
    args.exit_signal = SIGCHLD;
    args.stack = (uint64_t)(uintptr_t)stack;
    args.stack_size = stack_size;
    args.set_tid = (uint64_t)(uintptr_t)tid;
    args.set_tid_size = 1;
    pid = clone3_run(&args, child_main, plan);
    clone_errno = errno;
  }
  /* No PID asked for, or this machine cannot choose one (not x86-64; EINVAL: above pid_max): any PID. */
  if (pid < 0 && (clone_errno == ENOSYS || clone_errno == EINVAL)) {
    pid = clone(child_main, (char *)stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, plan);
    clone_errno = errno;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  munmap(stack, stack_size);
  if (pid < 0) {
    errno = clone_errno;
    return -1;
  }
  if (plan->error != 0) {
    int e = plan->error;
    waitpid(pid, NULL, 0);
    errno = e;
    return -1;
  }
  return pid;
}

/* A JS array of strings → a NULL-terminated C array (NULL if not an array of strings). */
static char **string_array(napi_env env, napi_value array) {
  uint32_t n = 0;
  if (napi_get_array_length(env, array, &n) != napi_ok) return NULL;
  char **out = calloc(n + 1, sizeof(char *));
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_get_element(env, array, i, &item);
    out[i] = dup_string(env, item);
    if (out[i] == NULL) {
      for (uint32_t j = 0; j < i; j++) free(out[j]);
      free(out);
      return NULL;
    }
  }
  return out;
}

static void free_array(char **array) {
  if (array == NULL) return;
  for (char **p = array; *p != NULL; p++) free(*p);
  free(array);
}

static void on_closed(uv_handle_t *handle) {
  Watch *watch = (Watch *)handle;
  close(watch->pidfd);
  free(watch);
}

static void on_exit_ready(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  Watch *watch = (Watch *)poll;
  int wstatus = 0;
  pid_t got;
  do got = waitpid(watch->pid, &wstatus, WNOHANG);
  while (got < 0 && errno == EINTR);
  if (got == 0) return; /* not yet (spurious wake-up) */
  uv_poll_stop(poll);
  napi_env env = watch->on_exit.env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[2];
  if (got > 0 && WIFEXITED(wstatus)) {
    napi_create_int32(env, WEXITSTATUS(wstatus), &argv[0]);
    napi_get_null(env, &argv[1]);
  } else if (got > 0 && WIFSIGNALED(wstatus)) {
    napi_get_null(env, &argv[0]);
    napi_create_int32(env, WTERMSIG(wstatus), &argv[1]);
  } else {
    napi_create_int32(env, 255, &argv[0]);
    napi_get_null(env, &argv[1]);
  }
  once_callback_call(&watch->on_exit, 2, argv);
  napi_close_handle_scope(env, scope);
  uv_close((uv_handle_t *)poll, on_closed);
}


static void free_command(Command *c) {
  free(c->file);
  free(c->cwd);
  free_array(c->argv);
  free_array(c->envp);
  free(c->sh_argv);
}

/* Reads args[0..4] (file, argv, env, cwd, fds) into `c`; -1 when they are not strings (`c` is then empty). */
static int parse_command(napi_env env, const napi_value *args, Command *c) {
  c->sh_argv = NULL;
  c->file = dup_string(env, args[0]);
  c->argv = string_array(env, args[1]);
  c->envp = string_array(env, args[2]);
  napi_valuetype cwd_type;
  napi_typeof(env, args[3], &cwd_type);
  c->cwd = cwd_type == napi_string ? dup_string(env, args[3]) : NULL;
  for (uint32_t i = 0; i < 3; i++) {
    napi_value item;
    c->fds[i] = -1;
    if (napi_get_element(env, args[4], i, &item) == napi_ok) napi_get_value_int32(env, item, &c->fds[i]);
  }
  if (c->file != NULL && c->argv != NULL && c->envp != NULL) {
    size_t n = 0;
    while (c->argv[n] != NULL) n++;
    c->sh_argv = calloc(n + 2, sizeof(char *));
    c->sh_argv[0] = "/bin/sh";
    c->sh_argv[1] = c->file;
    for (size_t i = 1; i < n; i++) c->sh_argv[i + 1] = c->argv[i];
    return 0;
  }
  free_command(c);
  memset(c, 0, sizeof *c);
  return -1;
}

/* posix_spawn(3) of `file` (looked up on PATH without a '/'); 0 or an errno. */
static int spawn_plain(const Command *c, pid_t *pid) {
  const char *file = c->file, *cwd = c->cwd;
  char **argv = c->argv, **envp = c->envp;
  const int *fds = c->fds;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  for (int i = 0; i < 3; i++) {
    if (fds[i] >= 0) posix_spawn_file_actions_adddup2(&actions, fds[i], i);
    else posix_spawn_file_actions_addopen(&actions, i, "/dev/null", O_RDWR, 0);
  }
  if (cwd != NULL) posix_spawn_file_actions_addchdir_np(&actions, cwd);
  /* A fresh session and group; default signal dispositions and an empty mask, as after exec from a shell. */
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  int error = strchr(file, '/') != NULL ? posix_spawn(pid, file, &actions, &attr, argv, envp)
                                        : posix_spawnp(pid, file, &actions, &attr, argv, envp);
  /* glibc's posix_spawn no longer falls back to the shell itself. */
  if (error == ENOEXEC) error = posix_spawn(pid, "/bin/sh", &actions, &attr, c->sh_argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return error;
}

/* Watches `pid`'s exit with a pidfd on libuv's loop; onExit is called once. -1 (child killed) if it cannot. */
static int watch_child(napi_env env, pid_t pid, napi_value on_exit) {
  Watch *watch = calloc(1, sizeof(Watch));
  watch->pid = pid;
  watch->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  if (watch->pidfd < 0 || uv_poll_init(loop, &watch->poll, watch->pidfd) != 0) {
    /* Cannot watch it: do not leave it behind. */
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (watch->pidfd >= 0) close(watch->pidfd);
    free(watch);
    return -1;
  }
  js_callback_init(&watch->on_exit, env, on_exit, "oneos-child");
  uv_poll_start(&watch->poll, UV_READABLE, on_exit_ready);
  return 0;
}

/*
 * spawn(file, argv, env, cwd, [fd0, fd1, fd2], onExit) -> pid. `file` is looked up on the runtime's
 * PATH when it has no '/'; `cwd` may be null; an fd of -1 is /dev/null. onExit(code, signal) is
 * called once. Throws an Error with code ENOENT/EACCES/... when the program cannot be started.
 */
static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value args[6];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 6) {
    napi_throw_type_error(env, "EINVAL", "spawn(file, argv, env, cwd, fds, onExit)");
    return NULL;
  }
  Command command;
  if (parse_command(env, args, &command) != 0) {
    napi_throw_type_error(env, "EINVAL", "spawn: file, argv and env must be strings");
    return NULL;
  }
  napi_value result = NULL;
  pid_t pid = 0;
  int error = spawn_plain(&command, &pid);
  if (error != 0) {
    napi_throw(env, errno_error(env, NULL, error, NULL));
    goto done;
  }
  if (watch_child(env, pid, args[5]) != 0) {
    napi_throw_error(env, "EIO", "spawn: cannot watch the child (pidfd)");
    goto done;
  }
  napi_create_int32(env, pid, &result);
done:
  free_command(&command);
  return result;
}

/* A namespaced spawn in flight on a worker thread; owns every string it points to. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref on_exit;
  Plan plan;
  Command command;
  char *mnt, *net, *uts, *pidns;
  int relay; /* relay kill(2) (kill-relay.c) */
  int listener; /* the relay's listener once the child sent it, or -1 */
  pid_t pid;
  int error;
} SpawnJob;

static void free_job(SpawnJob *job) {
  free_command(&job->command);
  free(job->mnt);
  free(job->uts);
  free(job->net);
  free(job->pidns);
  free(job);
}

static void SpawnInExecute(napi_env env, void *data) {
  (void)env;
  SpawnJob *job = data;
  Plan *plan = &job->plan;
  plan->mnt_fd = open(job->mnt, O_RDONLY | O_CLOEXEC);
  plan->net_fd = job->net != NULL ? open(job->net, O_RDONLY | O_CLOEXEC) : -1;
  plan->uts_fd = job->uts != NULL ? open(job->uts, O_RDONLY | O_CLOEXEC) : -1;
  /*
   * The PID namespace is this worker thread's for the clone (setns changes only the namespace of the
   * thread's future children, and only for this thread), and goes back to its own after.
   */
  int pid_fd = job->pidns != NULL ? open(job->pidns, O_RDONLY | O_CLOEXEC) : -1;
  int own_pid_fd = job->pidns != NULL ? open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC) : -1;
  if (plan->mnt_fd < 0 || (job->net != NULL && plan->net_fd < 0) || (job->uts != NULL && plan->uts_fd < 0) ||
      (job->pidns != NULL && (pid_fd < 0 || own_pid_fd < 0)))
    job->error = errno;
  else if (pid_fd >= 0 && setns(pid_fd, CLONE_NEWPID) != 0)
    job->error = errno;
  else {
    int pair[2] = {-1, -1};
    plan->relay_fd = -1;
    job->listener = -1;
    if (job->relay && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0) plan->relay_fd = pair[1];
    job->pid = spawn_in_namespaces(plan);
    if (job->pid < 0) job->error = errno;
    /* The child has exec'd or exited (vfork): its end is closed, ours goes first so the receive cannot wait. */
    if (pair[1] >= 0) close(pair[1]);
    if (pair[0] >= 0) {
      if (job->pid >= 0) job->listener = kill_listener_receive(pair[0]);
      close(pair[0]);
    }
    if (pid_fd >= 0) setns(own_pid_fd, CLONE_NEWPID);
  }
  if (pid_fd >= 0) close(pid_fd);
  if (own_pid_fd >= 0) close(own_pid_fd);
  if (plan->mnt_fd >= 0) close(plan->mnt_fd);
  if (plan->net_fd >= 0) close(plan->net_fd);
  if (plan->uts_fd >= 0) close(plan->uts_fd);
}

static void SpawnInComplete(napi_env env, napi_status status, void *data) {
  SpawnJob *job = data;
  if (status != napi_ok && job->error == 0) job->error = EIO;
  napi_value on_exit;
  napi_get_reference_value(env, job->on_exit, &on_exit);
  if (job->error != 0) {
    napi_reject_deferred(env, job->deferred, errno_error(env, NULL, job->error, NULL));
  } else if (watch_child(env, job->pid, on_exit) != 0) {
    napi_reject_deferred(env, job->deferred, errno_error(env, "EIO", EIO, "spawn: cannot watch the child (pidfd)"));
  } else {
    if (job->listener >= 0) {
      kill_listener_watch(env, job->listener);
      job->listener = -1;
    }
    napi_value pid;
    napi_create_int32(env, job->pid, &pid);
    napi_resolve_deferred(env, job->deferred, pid);
  }
  if (job->listener >= 0) close(job->listener);
  napi_delete_reference(env, job->on_exit);
  napi_delete_async_work(env, job->work);
  free_job(job);
}

/*
 * spawnIn(file, argv, env, cwd, [fd0, fd1, fd2], onExit, { mnt, net, uts, pidns, pid, uid, gid, umask }) -> Promise<pid>.
 * The child enters the namespaces (`/proc/PID/ns/...` paths; net, uts and pidns may be null), with `pid`
 * as its PID in pidns (a PID taken there: EEXIST; any PID when this machine cannot choose), changes to `cwd` there,
 * takes uid/gid (no supplementary groups) and the umask, and execs `file` (absolute, in the namespace).
 * The descriptors must stay open until the promise settles. Rejects like spawn() throws.
 */
static napi_value SpawnIn(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value args[7];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  napi_valuetype ns_type = napi_undefined;
  if (argc >= 7) napi_typeof(env, args[6], &ns_type);
  if (argc < 7 || ns_type != napi_object) {
    napi_throw_type_error(env, "EINVAL", "spawnIn(file, argv, env, cwd, fds, onExit, ns)");
    return NULL;
  }
  SpawnJob *job = calloc(1, sizeof(SpawnJob));
  job->listener = -1;
  Command *c = &job->command;
  if (parse_command(env, args, c) != 0 || c->file[0] != '/') {
    free_job(job);
    napi_throw_type_error(env, "EINVAL", "spawnIn: file (absolute), argv and env must be strings");
    return NULL;
  }
  napi_value v;
  uint32_t uid = 0, gid = 0, mask = 022;
  if (napi_get_named_property(env, args[6], "mnt", &v) == napi_ok) job->mnt = dup_string(env, v);
  if (napi_get_named_property(env, args[6], "net", &v) == napi_ok) job->net = dup_string(env, v);
  if (napi_get_named_property(env, args[6], "uts", &v) == napi_ok) job->uts = dup_string(env, v);
  if (napi_get_named_property(env, args[6], "pidns", &v) == napi_ok) job->pidns = dup_string(env, v);
  int32_t set_tid = 0;
  bool relay = false;
  if (napi_get_named_property(env, args[6], "relayKills", &v) == napi_ok) napi_get_value_bool(env, v, &relay);
  job->relay = relay;
  uint32_t own_from = 0, own_to = 0;
  if (napi_get_named_property(env, args[6], "ownFrom", &v) == napi_ok) napi_get_value_uint32(env, v, &own_from);
  if (napi_get_named_property(env, args[6], "ownTo", &v) == napi_ok) napi_get_value_uint32(env, v, &own_to);
  if (napi_get_named_property(env, args[6], "pid", &v) == napi_ok) napi_get_value_int32(env, v, &set_tid);
  if (napi_get_named_property(env, args[6], "uid", &v) == napi_ok) napi_get_value_uint32(env, v, &uid);
  if (napi_get_named_property(env, args[6], "gid", &v) == napi_ok) napi_get_value_uint32(env, v, &gid);
  if (napi_get_named_property(env, args[6], "umask", &v) == napi_ok) napi_get_value_uint32(env, v, &mask);
  if (job->mnt == NULL) {
    free_job(job);
    napi_throw_type_error(env, "EINVAL", "spawnIn: ns.mnt must be a path");
    return NULL;
  }
  Plan *plan = &job->plan;
  plan->cmd = c;
  plan->set_ids = uid != 0 || gid != 0;
  plan->set_tid = job->pidns != NULL && set_tid > 0 ? set_tid : 0;
  plan->own_from = own_from;
  plan->own_to = own_to;
  plan->uid = uid;
  plan->gid = gid;
  plan->umask = (mode_t)(mask & 0777);
  napi_create_reference(env, args[5], 1, &job->on_exit);
  return queue_promise_work(env, "oneos-spawn-in", SpawnInExecute, SpawnInComplete, job, &job->deferred, &job->work);
}

void register_spawn(napi_env env, napi_value exports) {
  register_kill_relay(env, exports);
  export_function(env, exports, "spawn", Spawn);
  export_function(env, exports, "spawnIn", SpawnIn);
}
