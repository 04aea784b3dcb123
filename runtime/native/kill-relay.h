/* kill(2) across nodes: see kill-relay.c. */
#ifndef ONEOS_KILL_RELAY_H
#define ONEOS_KILL_RELAY_H
#include "napi-common.h"
#include "kill-filter.h"

/* Watches `listener` on the loop; each intercepted kill goes to the function given to onKill. */
void kill_listener_watch(napi_env env, int listener);

void register_kill_relay(napi_env env, napi_value exports);

#endif
