/*
 * The filter half of the kill relay (kill-relay.c), shared by the addon and oneos-pidns: raw system
 * calls only, so a child between clone and exec may call it.
 */
#ifndef ONEOS_KILL_FILTER_H
#define ONEOS_KILL_FILTER_H

/* PIDs from here up are the node's own forks (pidns.c starts them there); below it, cluster PIDs. */
#define LOCAL_PID_BASE 2000000

/*
 * Installs the filter (while the caller still has CAP_SYS_ADMIN) and sends its listener over `sock`
 * (SCM_RIGHTS). 0, or -1 with errno.
 */
int kill_filter_install(int sock);

#endif
