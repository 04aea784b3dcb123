/* kill(2) across nodes: see kill-relay.c. */
#ifndef ONEOS_KILL_RELAY_H
#define ONEOS_KILL_RELAY_H
#include "napi-common.h"

/*
 * In a child between clone and exec, while it still has CAP_SYS_ADMIN: installs the filter and sends
 * its listener over `sock` (SCM_RIGHTS). Raw system calls only. 0, or -1 with errno.
 */
int kill_filter_install(int sock);

/* In the parent after the child exec'd: the listener the child sent over `sock`, or -1 (none sent). */
int kill_listener_receive(int sock);

/* Watches `listener` on the loop; each intercepted kill goes to the function given to onKill. */
void kill_listener_watch(napi_env env, int listener);

void register_kill_relay(napi_env env, napi_value exports);

#endif
