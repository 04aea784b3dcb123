#define _GNU_SOURCE
#include "napi-common.h"
#include <stdlib.h>
#include <string.h>

char *dup_string(napi_env env, napi_value value) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return NULL;
  char *text = malloc(length + 1);
  napi_get_value_string_utf8(env, value, text, length + 1, &length);
  return text;
}

const char *errno_name(int e) {
  const char *name = strerrorname_np(e);
  return name != NULL ? name : "EIO";
}

napi_value errno_error(napi_env env, const char *code, int e, const char *message) {
  napi_value code_value, message_value, error;
  napi_create_string_utf8(env, code != NULL ? code : errno_name(e), NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, message != NULL ? message : strerror(e), NAPI_AUTO_LENGTH, &message_value);
  napi_create_error(env, code_value, message_value, &error);
  napi_set_named_property(env, error, "code", code_value);
  return error;
}

napi_value queue_promise_work(napi_env env, const char *name, napi_async_execute_callback execute,
                              napi_async_complete_callback complete, void *data, napi_deferred *deferred,
                              napi_async_work *work) {
  napi_value promise, resource_name;
  napi_create_promise(env, deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  napi_create_async_work(env, NULL, resource_name, execute, complete, data, work);
  napi_queue_async_work(env, *work);
  return promise;
}

void export_function(napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value value;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &value);
  napi_set_named_property(env, exports, name, value);
}

void js_callback_init(JsCallback *cb, napi_env env, napi_value fn, const char *name) {
  cb->env = env;
  napi_create_reference(env, fn, 1, &cb->fn);
  napi_value resource_name;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &cb->context);
}

int js_callback_call(JsCallback *cb, size_t argc, napi_value *argv) {
  napi_env env = cb->env;
  napi_value fn, global, result;
  napi_get_reference_value(env, cb->fn, &fn);
  napi_get_global(env, &global);
  if (napi_make_callback(env, cb->context, global, fn, argc, argv, &result) == napi_ok) return 1;
  napi_value exception;
  if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
  return 0;
}

void js_callback_release(JsCallback *cb) {
  napi_async_destroy(cb->env, cb->context);
  napi_delete_reference(cb->env, cb->fn);
}

void once_callback_call(JsCallback *cb, size_t argc, napi_value *argv) {
  js_callback_call(cb, argc, argv);
  js_callback_release(cb);
}
