/*
 * oneos-pidns: holds a node's PID namespace, in which every process the runtime starts gets its
 * cluster PID as its own (spawn.c's clone3 with set_tid), so getpid(), `$$`, `$!`, /proc/self and a
 * server's PID file agree with `oneos ps`.
 *
 * It unshares a PID namespace and forks the namespace's init (PID 1), then waits for it. The runtime
 * enters the namespace through this process's /proc/PID/ns/pid_for_children. Init blocks every signal
 * and reaps whatever is reparented to it (a daemon's orphans, a shell's background jobs), as PID 1
 * must or they stay zombies. It dies with this process (PR_SET_PDEATHSIG), and with it every process
 * of the namespace: SIGTERM here ends the node's processes, as a machine's shutdown does.
 *
 * `oneos-pidns enter NS PID FROM TO -- PROGRAM ARGS...` starts PROGRAM in the namespace NS (a
 * /proc/PID/ns/pid_for_children path) with PID as its PID there, and waits for it as `nsenter --pid`
 * does: it stops when the program stops, and ends as the program ended. The runtime starts a terminal's
 * program this way (node-pty can only exec), PROGRAM being nsenter for the other namespaces. The
 * program gets the kill relay's filter (kill-filter.c; [FROM, TO) is the node's block of cluster
 * PIDs, whose kills stay the kernel's) and this process keeps its listener open, for
 * the runtime to take with pidfd_getfd (kill-relay.c's adoptKillListener).
 *
 * Init also raises the namespace's pid_max to the kernel's limit (per namespace since Linux 6.14; the
 * machine's on older kernels), since cluster PIDs can pass the usual 32,768, and starts the PIDs the
 * kernel hands to processes forked inside (a shell's children) at LOCAL_PID_BASE, far above the
 * cluster's, so the two never meet. It prints `ready` once that is done.
 */
#define _GNU_SOURCE
#include "kill-filter.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* PID_MAX_LIMIT on 64-bit Linux. */
#define PID_MAX_LIMIT 4194304

static long read_long(const char *path) {
  char text[32] = {0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  return n > 0 ? strtol(text, NULL, 10) : -1;
}

static int write_long(const char *path, long value) {
  char text[32];
  int len = snprintf(text, sizeof text, "%ld", value);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int ok = write(fd, text, (size_t)len) == len;
  close(fd);
  return ok ? 0 : -1;
}

static void run_init(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  prctl(PR_SET_NAME, "oneos-init");
  /* The sysctls act on the writer's own PID namespace, whichever procfs they are reached through. */
  if (read_long("/proc/sys/kernel/pid_max") < PID_MAX_LIMIT && write_long("/proc/sys/kernel/pid_max", PID_MAX_LIMIT) != 0)
    fprintf(stderr, "oneos-pidns: cannot raise pid_max (%s); cluster PIDs above it start with a PID of the node's\n", strerror(errno));
  if (read_long("/proc/sys/kernel/pid_max") > LOCAL_PID_BASE) write_long("/proc/sys/kernel/ns_last_pid", LOCAL_PID_BASE - 1);
  if (write(STDOUT_FILENO, "ready\n", 6) != 6) _exit(1);
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    if (null > STDERR_FILENO) close(null);
  }
  sigset_t all;
  sigfillset(&all);
  for (;;) {
    int sig = sigwaitinfo(&all, NULL);
    if (sig == SIGCHLD) {
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
    }
  }
}

/* `enter NS PID FROM TO -- PROGRAM ARGS...`; see above. */
static int enter(int argc, char **argv) {
  if (argc < 8 || strcmp(argv[6], "--") != 0) {
    fprintf(stderr, "usage: oneos-pidns enter NS PID FROM TO -- PROGRAM ARGS...\n");
    return 2;
  }
  int ns = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (ns < 0 || setns(ns, CLONE_NEWPID) != 0) {
    fprintf(stderr, "oneos-pidns: cannot enter %s: %s\n", argv[2], strerror(errno));
    return 126;
  }
  close(ns);
  pid_t tid[1] = {(pid_t)strtol(argv[3], NULL, 10)};
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  args.set_tid = (uint64_t)(uintptr_t)tid;
  args.set_tid_size = 1;
  int pair[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) pair[0] = pair[1] = -1;
  /* Without CLONE_VM this is a fork: the child returns here on its own copy of the stack. */
  pid_t child = tid[0] > 0 ? (pid_t)syscall(SYS_clone3, &args, sizeof args) : -1;
  /* The PID cannot be had (taken, above pid_max, no clone3): one of the namespace's own. */
  if (child < 0) child = fork();
  if (child < 0) {
    fprintf(stderr, "oneos-pidns: fork: %s\n", strerror(errno));
    return 126;
  }
  if (child == 0) {
    /* Without the relay (no socket, no seccomp) kill(2) stays the kernel's: the program still runs. */
    if (pair[1] >= 0) kill_filter_install(pair[1], (uint32_t)strtoul(argv[4], NULL, 10), (uint32_t)strtoul(argv[5], NULL, 10));
    /* An absolute path (the runtime's nsenter): never the caller's PATH, we are still root here. */
    execv(argv[7], &argv[7]);
    fprintf(stderr, "oneos-pidns: %s: %s\n", argv[7], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  if (pair[0] >= 0) {
    /* The listener (or none: the child could not install it) is kept open, for the runtime to take. */
    close(pair[1]);
    kill_listener_receive(pair[0]);
    close(pair[0]);
  }
  int status;
  for (;;) {
    pid_t got = waitpid(child, &status, WUNTRACED);
    if (got < 0 && errno == EINTR) continue;
    if (got == child && WIFSTOPPED(status)) {
      /* Stopped with it, and continued with it (nsenter's way). */
      kill(getpid(), SIGSTOP);
      kill(child, SIGCONT);
      continue;
    }
    break;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    signal(WTERMSIG(status), SIG_DFL);
    kill(getpid(), WTERMSIG(status));
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "enter") == 0) return enter(argc, argv);
  /* Blocked before the fork: init keeps them blocked and takes them with sigwaitinfo. */
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  if (unshare(CLONE_NEWPID) != 0) {
    fprintf(stderr, "oneos-pidns: cannot make a PID namespace: %s\n", strerror(errno));
    return 1;
  }
  pid_t init = fork();
  if (init < 0) {
    fprintf(stderr, "oneos-pidns: fork: %s\n", strerror(errno));
    return 1;
  }
  if (init == 0) run_init();
  /* Init holds stdout until it is ready; this process lets go of it now. */
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) dup2(null, STDOUT_FILENO);
  for (;;) {
    int sig = sigwaitinfo(&all, NULL);
    if (sig == SIGCHLD) {
      int status;
      if (waitpid(init, &status, WNOHANG) == init) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      kill(init, SIGKILL);
    }
  }
}
