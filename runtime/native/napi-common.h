/* Helpers shared by the runtime addon's files. */
#ifndef ONEOS_NAPI_COMMON_H
#define ONEOS_NAPI_COMMON_H
#define NAPI_VERSION 8
#include <node_api.h>

/* A JS string as a malloc'd C string, or NULL when it is not a string. */
char *dup_string(napi_env env, napi_value value);

/* An Error with `code` (the errno's name when NULL) and `message` (strerror(e) when NULL). */
napi_value errno_error(napi_env env, const char *code, int e, const char *message);

/* Creates the promise and queues `execute` on a libuv worker thread, `complete` back on the loop. */
napi_value queue_promise_work(napi_env env, const char *name, napi_async_execute_callback execute,
                              napi_async_complete_callback complete, void *data, napi_deferred *deferred,
                              napi_async_work *work);

#endif
