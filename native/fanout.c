/*
 * One packet to many sockets in one call. Node's socket.write costs several
 * microseconds of JavaScript and C++ per call before the kernel sees a byte
 * (stream state, a write request, a tick); this writes the same bytes to
 * every listed descriptor with plain write(2), the way nginx does, and says
 * what each took. It never blocks: the sockets are non-blocking, and what a
 * socket did not take is left to the caller, who hands it to socket.write.
 */
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <unistd.h>

#define CHECK(call) if ((call) != napi_ok) { napi_throw_error(env, NULL, "fanout: bad arguments"); return NULL; }

/* writeAll(fds: Int32Array, data: Buffer, written: Int32Array): bytes taken per fd, or -errno */
static napi_value write_all(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) { napi_throw_error(env, NULL, "fanout: writeAll(fds, data, written)"); return NULL; }
  napi_typedarray_type type;
  size_t count, out_count, len, offset;
  int32_t *fds, *written;
  void *data;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[0], &type, &count, (void **)&fds, &ab, &offset));
  if (type != napi_int32_array) { napi_throw_type_error(env, NULL, "fanout: fds must be an Int32Array"); return NULL; }
  CHECK(napi_get_buffer_info(env, argv[1], &data, &len));
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &out_count, (void **)&written, &ab, &offset));
  if (type != napi_int32_array || out_count < count) { napi_throw_type_error(env, NULL, "fanout: written must be an Int32Array as long as fds"); return NULL; }
  for (size_t i = 0; i < count; i++) {
    ssize_t n;
    do n = write(fds[i], data, len); while (n < 0 && errno == EINTR);
    written[i] = n < 0 ? -errno : (int32_t)n;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "writeAll", NAPI_AUTO_LENGTH, write_all, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "writeAll", fn) != napi_ok) return NULL;
  return exports;
}
