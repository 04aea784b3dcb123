/* Helpers shared by the runtime addon's files. */
#ifndef ONEOS_NAPI_COMMON_H
#define ONEOS_NAPI_COMMON_H
#define NAPI_VERSION 8
#include <node_api.h>

/* A JS string as a malloc'd C string, or NULL when it is not a string. */
char *dup_string(napi_env env, napi_value value);

/* The errno's name (ENOENT, EADDRINUSE...); EIO for a number without one. */
const char *errno_name(int e);

/* An Error with `code` (the errno's name when NULL) and `message` (strerror(e) when NULL). */
napi_value errno_error(napi_env env, const char *code, int e, const char *message);

/* Creates the promise and queues `execute` on a libuv worker thread, `complete` back on the loop. */
napi_value queue_promise_work(napi_env env, const char *name, napi_async_execute_callback execute,
                              napi_async_complete_callback complete, void *data, napi_deferred *deferred,
                              napi_async_work *work);

/* Adds the native function `fn` to `exports` as `name`. */
void export_function(napi_env env, napi_value exports, const char *name, napi_callback fn);

/*
 * A JS function kept to be called later from a libuv callback (a child's exit, a connect that completed,
 * an accepted connection): made with napi_make_callback so the promises it settles run their
 * continuations. An exception it throws has no JS caller to go to: it is reported as uncaught.
 */
typedef struct {
  napi_env env;
  napi_ref fn;
  napi_async_context context;
} JsCallback;

void js_callback_init(JsCallback *cb, napi_env env, napi_value fn, const char *name);

/* Calls it with `argv` (made by the caller inside its own handle scope); false if it threw. */
int js_callback_call(JsCallback *cb, size_t argc, napi_value *argv);

void js_callback_release(JsCallback *cb);

/* Calls it once and lets it go. */
void once_callback_call(JsCallback *cb, size_t argc, napi_value *argv);

#endif
