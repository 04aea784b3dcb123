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

napi_value errno_error(napi_env env, const char *code, int e, const char *message) {
  if (code == NULL) code = strerrorname_np(e);
  napi_value code_value, message_value, error;
  napi_create_string_utf8(env, code != NULL ? code : "EIO", NAPI_AUTO_LENGTH, &code_value);
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
