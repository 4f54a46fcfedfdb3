/* C interop peer (the C library, which PHP and other FFI users share).
 *   peer write URL    -> builds the golden session as MessagePack, creates it, prints the id
 *   peer read URL ID  -> prints JSON: the type and typed-accessor view of each golden key,
 *                        and the whole session's MessagePack (hex) as C receives it
 * Build: see scripts/test-interop.sh (same recipe as scripts/test-c.sh's harness). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessionkeeper.h"

static const char *OPTION_NAMES[] = {"key_prefix", "codec"};
static const char *OPTION_VALUES[] = {"sk-interop:", "msgpack"};

static const char *KEYS[] = {"nil", "true", "false", "int_small", "int_negative", "int_2_53_plus_1",
                             "int_min", "int_max", "float", "float_tenth", "float_whole",
                             "float_negative_zero", "float_huge", "float_2_53", "str_empty", "str_utf8", "bytes",
                             "bytes_empty", "array", "array_empty", "map", "symbol", "timestamp",
                             "timestamp_pre_epoch"};

/* --- a minimal MessagePack writer ---------------------------------------------------- */
static uint8_t buf[4096];
static size_t len;
static void put(uint8_t b) { buf[len++] = b; }
static void put_be(uint64_t v, int n) {
  for (int i = n - 1; i >= 0; i--) put((uint8_t)(v >> (8 * i)));
}
static void mp_nil(void) { put(0xc0); }
static void mp_bool(int b) { put(b ? 0xc3 : 0xc2); }
static void mp_int(int64_t v) {
  if (v >= 0 && v < 128) put((uint8_t)v);
  else if (v < 0 && v >= -32) put((uint8_t)(int8_t)v);
  else { put(0xd3); put_be((uint64_t)v, 8); }
}
static void mp_float(double d) {
  uint64_t bits;
  memcpy(&bits, &d, 8);
  put(0xcb);
  put_be(bits, 8);
}
static void mp_str(const char *s) {
  size_t n = strlen(s);
  put(0xd9); put((uint8_t)n);
  memcpy(buf + len, s, n); len += n;
}
static void mp_bin(const uint8_t *b, size_t n) {
  put(0xc4); put((uint8_t)n);
  memcpy(buf + len, b, n); len += n;
}
static void mp_array(size_t n) { put(0xdc); put_be(n, 2); }
static void mp_map(size_t n) { put(0xde); put_be(n, 2); }
static void mp_ts(int64_t secs, uint32_t nanos) { /* timestamp 96, extension type -1 */
  put(0xc7); put(12); put(0xff);
  put_be(nanos, 4);
  put_be((uint64_t)secs, 8);
}

static void golden(void) {
  static const uint8_t bytes[] = {0x00, 0x01, 'a', 'b', 'c', 0xfe, 0xff};
  mp_map(24);
  mp_str("nil"); mp_nil();
  mp_str("true"); mp_bool(1);
  mp_str("false"); mp_bool(0);
  mp_str("int_small"); mp_int(42);
  mp_str("int_negative"); mp_int(-7);
  mp_str("int_2_53_plus_1"); mp_int(9007199254740993LL);
  mp_str("int_min"); mp_int(INT64_MIN);
  mp_str("int_max"); mp_int(INT64_MAX);
  mp_str("float"); mp_float(3.25);
  mp_str("float_tenth"); mp_float(0.1);
  mp_str("float_whole"); mp_float(2.0);
  mp_str("float_negative_zero"); mp_float(-0.0);
  mp_str("float_huge"); mp_float(1.5e300);
  mp_str("float_2_53"); mp_float(9007199254740992.0);
  mp_str("str_empty"); mp_str("");
  mp_str("str_utf8"); mp_str("h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89");
  mp_str("bytes"); mp_bin(bytes, sizeof bytes);
  mp_str("bytes_empty"); mp_bin(bytes, 0);
  mp_str("array"); mp_array(4); mp_int(1); mp_str("two"); mp_nil(); mp_array(2); mp_float(3.5); mp_bool(0);
  mp_str("array_empty"); mp_array(0);
  mp_str("map"); mp_map(3);
    mp_str("a"); mp_int(1);
    mp_str("nested"); mp_map(1); mp_str("b"); mp_array(2); mp_bool(1); mp_map(1); mp_str("c"); mp_str("d");
    mp_str("empty"); mp_map(0);
  mp_str("symbol"); mp_str("sym");
  mp_str("timestamp"); mp_ts(1795437296, 123456789);
  mp_str("timestamp_pre_epoch"); mp_ts(-1, 500000000);
}

static int fail(const char *what, sessionkeeper_error *err) {
  fprintf(stderr, "c peer: %s: %s\n", what, err ? sessionkeeper_error_message(err) : "?");
  sessionkeeper_error_free(err);
  return 1;
}

static void json_string(const char *s) { /* keys and values here need only these escapes */
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
  putchar('"');
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: peer write URL | peer read URL ID\n");
    return 2;
  }
  sessionkeeper_error *err = NULL;
  sessionkeeper_store *store = NULL;
  /* SK_INTEROP_CODEC: the store codec ("msgpack" by default, or "json"). */
  if (getenv("SK_INTEROP_CODEC")) OPTION_VALUES[1] = getenv("SK_INTEROP_CODEC");
  if (sessionkeeper_store_open(argv[2], OPTION_NAMES, OPTION_VALUES, 2, &store, &err)) return fail("open", err);
  int rc = 0;
  if (strcmp(argv[1], "write") == 0) {
    golden();
    sessionkeeper_session *s = sessionkeeper_session_new();
    char *id = NULL;
    if (sessionkeeper_session_set_msgpack(s, buf, len, &err)) rc = fail("set_msgpack", err);
    else if (sessionkeeper_store_create(store, s, &id, &err)) rc = fail("create", err);
    else printf("%s\n", id);
    sessionkeeper_string_free(id);
    sessionkeeper_session_free(s);
  } else if (strcmp(argv[1], "read") == 0 && argc == 4) {
    sessionkeeper_session *s = NULL;
    if (sessionkeeper_store_load(store, argv[3], &s, &err)) rc = fail("load", err);
    else if (!s) { fprintf(stderr, "c peer: no session %s\n", argv[3]); rc = 1; }
    else {
      printf("{\"keys\": %zu, \"view\": {", sessionkeeper_session_len(s));
      for (size_t i = 0; i < sizeof KEYS / sizeof *KEYS; i++) {
        sessionkeeper_type type;
        if (sessionkeeper_session_type(s, KEYS[i], &type, &err)) { rc = fail("type", err); break; }
        printf("%s", i ? ", " : "");
        json_string(KEYS[i]);
        printf(": [%d", (int)type);
        if (type == SESSIONKEEPER_TYPE_INT) {
          int64_t v; bool found;
          if (sessionkeeper_session_get_int(s, KEYS[i], &v, &found, &err)) { rc = fail("get_int", err); break; }
          printf(", \"%" PRId64 "\"", v);
        } else if (type == SESSIONKEEPER_TYPE_STRING) {
          char *v = NULL;
          if (sessionkeeper_session_get_string(s, KEYS[i], &v, &err)) { rc = fail("get_string", err); break; }
          printf(", ");
          json_string(v);
          sessionkeeper_string_free(v);
        }
        printf("]");
      }
      uint8_t *mp = NULL;
      size_t n = 0;
      if (rc == 0 && sessionkeeper_session_get_msgpack(s, &mp, &n, &err)) rc = fail("get_msgpack", err);
      if (rc == 0) {
        printf("}, \"msgpack\": \"");
        for (size_t i = 0; i < n; i++) printf("%02x", mp[i]);
        printf("\"}\n");
      }
      sessionkeeper_bytes_free(mp, n);
    }
    sessionkeeper_session_free(s);
  } else {
    fprintf(stderr, "usage: peer write URL | peer read URL ID\n");
    rc = 2;
  }
  sessionkeeper_store_free(store);
  return rc;
}
