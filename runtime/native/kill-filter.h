/*
 * The filter half of the kill relay (kill-relay.c), shared by the addon and oneos-pidns: raw system
 * calls only, so a child between clone and exec may call it.
 */
#ifndef ONEOS_KILL_FILTER_H
#define ONEOS_KILL_FILTER_H

/* PIDs from here up are the node's own forks (pidns.c starts them there); below it, cluster PIDs. */
#include <stdint.h>

#define LOCAL_PID_BASE 2000000

/*
 * Installs the filter (while the caller still has CAP_SYS_ADMIN) and sends its listener over `sock`
 * (SCM_RIGHTS). kill(2) of a PID in [own_from, own_to), the node's current block of cluster PIDs,
 * stays the kernel's like the node's own forks. 0, or -1 with errno.
 */
int kill_filter_install(int sock, uint32_t own_from, uint32_t own_to);

/*
 * In the parent: the listener the child sent over `sock` (a SOCK_SEQPACKET pair: a datagram one
 * would not see its peer close), or -1 if it sent none. Blocks until it sent one or every other end
 * of the pair is closed: close yours first.
 */
int kill_listener_receive(int sock);

#endif
