/*
 * The C harness for libsessionkeeper: every store operation, every error
 * path, the shared-mode cookie, a multi-threaded case and a fork() case,
 * against the in-memory backend and against the Redis topologies named by
 * SK_REDIS_URL and SK_CLUSTER_URL (started by
 * scripts/with-redis.sh). Checks count instead of aborting, so one run
 * reports every failure; the last line is "N passed, M failed" and the exit
 * status is non-zero when anything failed. Run under valgrind by
 * scripts/test-c.sh.
 *
 * Environment: SK_REDIS_URL, SK_CLUSTER_URL (either may be unset; with
 * SK_REQUIRE_REDIS=1 a missing one is a failure), SK_DOWN_URL (a URL where
 * nothing listens; default redis://127.0.0.1:1).
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sessionkeeper.h"

static int passed, failed;
static const char *current = "setup";

static void fail(int line, const char *fmt, ...)
{
    va_list ap;
    failed++;
    fprintf(stderr, "FAIL [%s] line %d: ", current, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define CHECK(cond)                                                   \
    do {                                                              \
        if (cond)                                                     \
            passed++;                                                 \
        else                                                          \
            fail(__LINE__, "%s", #cond);                              \
    } while (0)

/* Checks a call's code and the error object it left in `err` (declared by
 * each test as `sessionkeeper_error *err = NULL;`), then frees the error. */
static void expect_code(sessionkeeper_code got, sessionkeeper_code want, sessionkeeper_error **err,
                        const char *call, int line)
{
    if (got == want) {
        passed++;
    } else {
        fail(line, "%s\n    returned %s, wanted %s; message: %s", call, sessionkeeper_code_name((int)got),
             sessionkeeper_code_name((int)want), *err ? sessionkeeper_error_message(*err) : "(no error object)");
    }
    if (want == SESSIONKEEPER_OK) {
        if (*err != NULL && got == want)
            fail(line, "%s: an error object was left on success", call);
    } else if (*err == NULL) {
        fail(line, "%s: no error object on failure", call);
    } else {
        const char *msg = sessionkeeper_error_message(*err);
        if (sessionkeeper_error_code(*err) != got)
            fail(line, "%s: error object code %d differs from the returned code", call, (int)sessionkeeper_error_code(*err));
        else if (msg == NULL || msg[0] == '\0')
            fail(line, "%s: empty error message", call);
        else
            passed++;
    }
    sessionkeeper_error_free(*err);
    *err = NULL;
}

#define EXPECT(want, call) expect_code((call), (want), &err, #call, __LINE__)
#define OK(call) EXPECT(SESSIONKEEPER_OK, call)

/* Like EXPECT, but keeps the error for further checks (the caller frees it). */
#define EXPECT_KEEP(want, call)                                                        \
    do {                                                                               \
        sessionkeeper_code got_ = (call);                                              \
        if (got_ == (want) && err != NULL && sessionkeeper_error_code(err) == (want)) \
            passed++;                                                                  \
        else                                                                           \
            fail(__LINE__, "%s returned %s, wanted %s", #call,                         \
                 sessionkeeper_code_name((int)got_), sessionkeeper_code_name((int)(want))); \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int str_eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static sessionkeeper_store *open_store(const char *url, const char **names, const char **values, size_t n)
{
    sessionkeeper_store *store = NULL;
    sessionkeeper_error *err = NULL;
    OK(sessionkeeper_store_open(url, names, values, n, &store, &err));
    CHECK(store != NULL);
    return store;
}

/* --- the whole life of a session ------------------------------------------------ */

static void test_lifecycle(const char *url)
{
    static const char *names[] = {"key_prefix", "command_timeout"};
    static const char *values[] = {"ctest:", "2s"};
    sessionkeeper_error *err = NULL;
    sessionkeeper_store *store = open_store(url, names, values, 2);
    if (!store)
        return;

    /* create */
    sessionkeeper_session *s = sessionkeeper_session_new();
    CHECK(s != NULL);
    CHECK(sessionkeeper_session_len(s) == 0);
    OK(sessionkeeper_session_set_string(s, "user", "alice", &err));
    OK(sessionkeeper_session_set_int(s, "visits", 1, &err));
    OK(sessionkeeper_session_set_string(s, "unicode", "h\xc3\xa9llo \xe2\x9c\x93", &err));
    OK(sessionkeeper_session_set_int(s, "min", INT64_MIN, &err));
    char *id = NULL;
    OK(sessionkeeper_store_create(store, s, &id, &err));
    CHECK(id != NULL && sessionkeeper_id_is_valid(id));
    sessionkeeper_save_outcome outcome = SESSIONKEEPER_SAVE_GONE;
    OK(sessionkeeper_store_save(store, id, s, &outcome, &err));
    CHECK(outcome == SESSIONKEEPER_SAVE_UNCHANGED); /* create set the baseline */
    sessionkeeper_session_free(s);

    bool yes = false;
    OK(sessionkeeper_store_exists(store, id, &yes, &err));
    CHECK(yes);

    /* load */
    sessionkeeper_session *loaded = NULL;
    OK(sessionkeeper_store_load(store, id, &loaded, &err));
    CHECK(loaded != NULL);
    if (!loaded) {
        sessionkeeper_string_free(id);
        sessionkeeper_store_free(store);
        return;
    }
    CHECK(sessionkeeper_session_len(loaded) == 4);
    char *str = NULL;
    OK(sessionkeeper_session_get_string(loaded, "user", &str, &err));
    CHECK(str_eq(str, "alice"));
    sessionkeeper_string_free(str);
    OK(sessionkeeper_session_get_string(loaded, "unicode", &str, &err));
    CHECK(str_eq(str, "h\xc3\xa9llo \xe2\x9c\x93"));
    sessionkeeper_string_free(str);
    OK(sessionkeeper_session_get_string(loaded, "nope", &str, &err));
    CHECK(str == NULL);
    int64_t n = 0;
    bool found = false;
    OK(sessionkeeper_session_get_int(loaded, "visits", &n, &found, &err));
    CHECK(found && n == 1);
    OK(sessionkeeper_session_get_int(loaded, "min", &n, &found, &err));
    CHECK(found && n == INT64_MIN);
    OK(sessionkeeper_session_get_int(loaded, "nope", &n, &found, &err));
    CHECK(!found && n == 0);
    sessionkeeper_type type = SESSIONKEEPER_TYPE_NIL;
    OK(sessionkeeper_session_type(loaded, "user", &type, &err));
    CHECK(type == SESSIONKEEPER_TYPE_STRING);
    OK(sessionkeeper_session_type(loaded, "visits", &type, &err));
    CHECK(type == SESSIONKEEPER_TYPE_INT);
    OK(sessionkeeper_session_type(loaded, "nope", &type, &err));
    CHECK(type == SESSIONKEEPER_TYPE_MISSING);
    sessionkeeper_meta meta;
    CHECK(sessionkeeper_session_meta(loaded, &meta));
    int64_t now = now_ms();
    CHECK(meta.created_at_ms > now - 60000 && meta.created_at_ms < now + 60000);
    CHECK(meta.deadline_ms == 0);                                  /* no absolute_ttl */
    CHECK(meta.expires_at_ms > now + 13LL * 24 * 3600 * 1000);     /* default idle_ttl: 14 days */

    /* save: only changes are written; removal is a change */
    OK(sessionkeeper_store_save(store, id, loaded, &outcome, &err));
    CHECK(outcome == SESSIONKEEPER_SAVE_UNCHANGED);
    OK(sessionkeeper_session_set_int(loaded, "visits", 2, &err));
    bool removed = false;
    OK(sessionkeeper_session_remove(loaded, "unicode", &removed, &err));
    CHECK(removed);
    OK(sessionkeeper_session_remove(loaded, "unicode", &removed, &err));
    CHECK(!removed);
    OK(sessionkeeper_session_remove(loaded, "min", NULL, &err));
    OK(sessionkeeper_store_save(store, id, loaded, &outcome, &err));
    CHECK(outcome == SESSIONKEEPER_SAVE_WRITTEN);
    OK(sessionkeeper_store_save(store, id, loaded, &outcome, &err));
    CHECK(outcome == SESSIONKEEPER_SAVE_UNCHANGED);

    sessionkeeper_session *again = NULL;
    OK(sessionkeeper_store_load(store, id, &again, &err));
    CHECK(again != NULL && sessionkeeper_session_len(again) == 2);
    OK(sessionkeeper_session_get_int(again, "visits", &n, &found, &err));
    CHECK(found && n == 2);
    OK(sessionkeeper_session_type(again, "unicode", &type, &err));
    CHECK(type == SESSIONKEEPER_TYPE_MISSING);
    sessionkeeper_session_free(again);

    /* the whole session as MessagePack, both ways */
    static const uint8_t nested[] = {0x82, 0xa1, 'n', 0x81, 0xa1, 'a', 0x92, 0x01, 0xa1, 'x',
                                     0xa1, 'b', 0xc4, 0x02, 0x00, 0xff};
    OK(sessionkeeper_session_set_msgpack(loaded, nested, sizeof nested, &err));
    uint8_t *bytes = NULL;
    size_t len = 0;
    OK(sessionkeeper_session_get_msgpack(loaded, &bytes, &len, &err));
    CHECK(len == sizeof nested && bytes && memcmp(bytes, nested, len) == 0);
    sessionkeeper_bytes_free(bytes, len);
    OK(sessionkeeper_store_save(store, id, loaded, &outcome, &err));
    CHECK(outcome == SESSIONKEEPER_SAVE_WRITTEN);
    OK(sessionkeeper_store_load(store, id, &again, &err));
    CHECK(again != NULL && sessionkeeper_session_len(again) == 2);
    OK(sessionkeeper_session_type(again, "n", &type, &err));
    CHECK(type == SESSIONKEEPER_TYPE_MAP);
    OK(sessionkeeper_session_type(again, "b", &type, &err));
    CHECK(type == SESSIONKEEPER_TYPE_BYTES);
    OK(sessionkeeper_session_type(again, "user", &type, &err));
    CHECK(type == SESSIONKEEPER_TYPE_MISSING); /* replaced map: old keys deleted in Redis */
    OK(sessionkeeper_session_get_msgpack(again, &bytes, &len, &err));
    CHECK(len == sizeof nested);
    sessionkeeper_bytes_free(bytes, len);
    sessionkeeper_session_free(again);

    {
        /* {"counter": 3}, exactly as any MessagePack library writes it */
        sessionkeeper_session *c = sessionkeeper_session_new();
        OK(sessionkeeper_session_set_int(c, "counter", 3, &err));
        OK(sessionkeeper_session_get_msgpack(c, &bytes, &len, &err));
        CHECK(len == 10 && memcmp(bytes, "\x81\xa7" "counter\x03", 10) == 0);
        sessionkeeper_bytes_free(bytes, len);
        sessionkeeper_session_free(c);
    }

    /* renew: new id, old one gone, data and handle carry over */
    char *new_id = NULL;
    OK(sessionkeeper_store_renew(store, id, &new_id, &err));
    CHECK(new_id != NULL && sessionkeeper_id_is_valid(new_id) && strcmp(new_id, id) != 0);
    OK(sessionkeeper_store_load(store, id, &again, &err));
    CHECK(again == NULL);
    OK(sessionkeeper_store_load(store, new_id, &again, &err));
    CHECK(again != NULL && sessionkeeper_session_len(again) == 2);
    sessionkeeper_session_free(again);
    OK(sessionkeeper_session_set_string(loaded, "after_renew", "yes", &err));
    OK(sessionkeeper_store_save(store, new_id, loaded, &outcome, &err));
    CHECK(outcome == SESSIONKEEPER_SAVE_WRITTEN);
    OK(sessionkeeper_store_renew(store, id, &str, &err));
    CHECK(str == NULL); /* nothing left under the old id */

    /* touch */
    bool alive = false;
    OK(sessionkeeper_store_touch(store, new_id, &alive, &err));
    CHECK(alive);
    OK(sessionkeeper_store_touch(store, id, &alive, &err));
    CHECK(!alive);
    OK(sessionkeeper_store_touch(store, new_id, NULL, &err));

    /* destroy; a save after it is Gone and does not re-create the session */
    bool existed = false;
    OK(sessionkeeper_store_destroy(store, new_id, &existed, &err));
    CHECK(existed);
    OK(sessionkeeper_store_exists(store, new_id, &yes, &err));
    CHECK(!yes);
    OK(sessionkeeper_store_load(store, new_id, &again, &err));
    CHECK(again == NULL);
    OK(sessionkeeper_session_set_int(loaded, "visits", 3, &err));
    OK(sessionkeeper_store_save(store, new_id, loaded, &outcome, &err));
    CHECK(outcome == SESSIONKEEPER_SAVE_GONE);
    OK(sessionkeeper_store_exists(store, new_id, &yes, &err));
    CHECK(!yes);
    OK(sessionkeeper_store_destroy(store, new_id, &existed, &err));
    CHECK(!existed);
    OK(sessionkeeper_store_destroy(store, new_id, NULL, &err));
    sessionkeeper_session_free(loaded);
    sessionkeeper_string_free(new_id);
    sessionkeeper_string_free(id);

    /* insert under a caller-made id: only when free */
    char *gen = NULL;
    OK(sessionkeeper_id_generate(&gen, &err));
    CHECK(gen != NULL && sessionkeeper_id_is_valid(gen) && strlen(gen) == 32);
    s = sessionkeeper_session_new();
    OK(sessionkeeper_session_set_string(s, "who", "first", &err));
    bool inserted = false;
    OK(sessionkeeper_store_insert(store, gen, s, &inserted, &err));
    CHECK(inserted);
    OK(sessionkeeper_session_set_string(s, "who", "second", &err));
    sessionkeeper_session *other = sessionkeeper_session_new();
    OK(sessionkeeper_session_set_string(other, "who", "intruder", &err));
    OK(sessionkeeper_store_insert(store, gen, other, &inserted, &err));
    CHECK(!inserted);
    sessionkeeper_session_free(other);
    OK(sessionkeeper_store_save(store, gen, s, &outcome, &err)); /* the insert set the baseline */
    CHECK(outcome == SESSIONKEEPER_SAVE_WRITTEN);
    OK(sessionkeeper_store_load(store, gen, &again, &err));
    OK(sessionkeeper_session_get_string(again, "who", &str, &err));
    CHECK(str_eq(str, "second"));
    sessionkeeper_string_free(str);
    sessionkeeper_session_free(again);
    sessionkeeper_session_free(s);
    OK(sessionkeeper_store_destroy(store, gen, NULL, &err));
    sessionkeeper_string_free(gen);

    /* a per-request sliding expiry: 1 s, then the session is gone */
    sessionkeeper_store *brief = NULL;
    OK(sessionkeeper_store_with_idle_ttl(store, 1000, &brief, &err));
    s = sessionkeeper_session_new();
    OK(sessionkeeper_session_set_int(s, "x", 1, &err));
    OK(sessionkeeper_store_create(brief, s, &id, &err));
    OK(sessionkeeper_store_load(brief, id, &again, &err));
    CHECK(again && sessionkeeper_session_meta(again, &meta));
    CHECK(meta.expires_at_ms > meta.created_at_ms && meta.expires_at_ms - meta.created_at_ms <= 2000);
    sessionkeeper_session_free(again);
    sleep_ms(1300);
    OK(sessionkeeper_store_exists(store, id, &yes, &err));
    CHECK(!yes);
    sessionkeeper_session_free(s);
    sessionkeeper_string_free(id);

    /* two requests change different keys of one session: the second save
       finds the first's change, merges, and both survive */
    sessionkeeper_stats before;
    OK(sessionkeeper_store_stats(store, &before, &err));
    s = sessionkeeper_session_new();
    OK(sessionkeeper_session_set_int(s, "a", 0, &err));
    OK(sessionkeeper_store_create(store, s, &id, &err));
    sessionkeeper_session_free(s);
    sessionkeeper_session *one = NULL, *two = NULL;
    OK(sessionkeeper_store_load(store, id, &one, &err));
    OK(sessionkeeper_store_load(store, id, &two, &err));
    OK(sessionkeeper_session_set_int(one, "x", 1, &err));
    OK(sessionkeeper_session_set_int(two, "y", 2, &err));
    OK(sessionkeeper_store_save(store, id, one, &outcome, &err));
    OK(sessionkeeper_store_save(store, id, two, &outcome, &err));
    CHECK(outcome == SESSIONKEEPER_SAVE_WRITTEN);
    OK(sessionkeeper_store_load(store, id, &again, &err));
    OK(sessionkeeper_session_get_int(again, "x", &n, &found, &err));
    CHECK(found && n == 1);
    OK(sessionkeeper_session_get_int(again, "y", &n, &found, &err));
    CHECK(found && n == 2);
    sessionkeeper_session_free(again);
    sessionkeeper_session_free(one);
    sessionkeeper_session_free(two);
    OK(sessionkeeper_store_destroy(store, id, NULL, &err));
    sessionkeeper_string_free(id);

    /* stats count what happened (shared by both handles) */
    sessionkeeper_stats st;
    OK(sessionkeeper_store_stats(brief, &st, &err));
    /* the memory backend (tests) merges without comparing: it counts none */
    bool on_redis = strncmp(url, "memory:", 7) != 0;
    CHECK(st.merged_saves == before.merged_saves + (on_redis ? 1 : 0));
    CHECK(st.creates >= 3 && st.loads >= 8 && st.hits >= 6 && st.misses >= 2);
    CHECK(st.saves >= 4 && st.skipped_saves >= 3 && st.gone_saves == 1 && st.destroys >= 2);
    CHECK(st.round_trips > 10 && st.latency_max_us > 0 && st.latency_p50_us <= st.latency_max_us);
    CHECK(st.keys_written > 0 && st.bytes_written > 0 && st.bytes_read > 0);
    sessionkeeper_store_free(brief);
    sessionkeeper_store_free(store);
}

/* --- many threads on one store handle ------------------------------------------- */

#define THREADS 8
#define ROUNDS 15

struct worker {
    sessionkeeper_store *store;
    const char *shared_id;
    int index;
    int ok, bad;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char key[16];
    snprintf(key, sizeof key, "t%d", w->index);
#define W(cond) ((cond) ? w->ok++ : (w->bad++, fprintf(stderr, "FAIL [threads] worker %d line %d: %s\n", w->index, __LINE__, #cond)))
    for (int round = 0; round < ROUNDS; round++) {
        sessionkeeper_session *s = sessionkeeper_session_new();
        char *id = NULL;
        W(sessionkeeper_session_set_int(s, "n", round, NULL) == SESSIONKEEPER_OK);
        W(sessionkeeper_session_set_string(s, "owner", key, NULL) == SESSIONKEEPER_OK);
        W(sessionkeeper_store_create(w->store, s, &id, NULL) == SESSIONKEEPER_OK);
        sessionkeeper_session_free(s);
        sessionkeeper_session *l = NULL;
        W(sessionkeeper_store_load(w->store, id, &l, NULL) == SESSIONKEEPER_OK && l != NULL);
        int64_t n = -1;
        bool found = false;
        char *owner = NULL;
        W(sessionkeeper_session_get_int(l, "n", &n, &found, NULL) == SESSIONKEEPER_OK && found && n == round);
        W(sessionkeeper_session_get_string(l, "owner", &owner, NULL) == SESSIONKEEPER_OK && str_eq(owner, key));
        sessionkeeper_string_free(owner);
        sessionkeeper_save_outcome outcome = SESSIONKEEPER_SAVE_UNCHANGED;
        W(sessionkeeper_session_set_int(l, "n", round + 100, NULL) == SESSIONKEEPER_OK);
        W(sessionkeeper_store_save(w->store, id, l, &outcome, NULL) == SESSIONKEEPER_OK &&
          outcome == SESSIONKEEPER_SAVE_WRITTEN);
        sessionkeeper_session_free(l);
        l = NULL;
        W(sessionkeeper_store_load(w->store, id, &l, NULL) == SESSIONKEEPER_OK && l != NULL);
        W(sessionkeeper_session_get_int(l, "n", &n, &found, NULL) == SESSIONKEEPER_OK && n == round + 100);
        sessionkeeper_session_free(l);
        bool existed = false;
        W(sessionkeeper_store_destroy(w->store, id, &existed, NULL) == SESSIONKEEPER_OK && existed);
        sessionkeeper_string_free(id);

        /* Every thread changes its own key of one shared session: the engine
         * merges per key, so no thread's write is lost. */
        sessionkeeper_session *shared = NULL;
        W(sessionkeeper_store_load(w->store, w->shared_id, &shared, NULL) == SESSIONKEEPER_OK && shared);
        W(sessionkeeper_session_set_int(shared, key, round, NULL) == SESSIONKEEPER_OK);
        W(sessionkeeper_store_save(w->store, w->shared_id, shared, &outcome, NULL) == SESSIONKEEPER_OK &&
          outcome != SESSIONKEEPER_SAVE_GONE);
        sessionkeeper_session_free(shared);
    }
#undef W
    return NULL;
}

static void test_threads(const char *url)
{
    sessionkeeper_error *err = NULL;
    sessionkeeper_store *store = open_store(url, NULL, NULL, 0);
    if (!store)
        return;
    sessionkeeper_session *s = sessionkeeper_session_new();
    char *shared_id = NULL;
    OK(sessionkeeper_store_create(store, s, &shared_id, &err));
    sessionkeeper_session_free(s);
    if (!shared_id) {
        sessionkeeper_store_free(store);
        return;
    }

    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){store, shared_id, i, 0, 0};
        CHECK(pthread_create(&threads[i], NULL, worker_main, &workers[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        passed += workers[i].ok;
        failed += workers[i].bad;
    }

    OK(sessionkeeper_store_load(store, shared_id, &s, &err));
    CHECK(s != NULL && sessionkeeper_session_len(s) == THREADS);
    for (int i = 0; s && i < THREADS; i++) {
        char key[16];
        int64_t n = -1;
        bool found = false;
        snprintf(key, sizeof key, "t%d", i);
        OK(sessionkeeper_session_get_int(s, key, &n, &found, &err));
        CHECK(found && n == ROUNDS - 1);
    }
    sessionkeeper_session_free(s);
    OK(sessionkeeper_store_destroy(store, shared_id, NULL, &err));
    sessionkeeper_string_free(shared_id);

    sessionkeeper_stats st;
    OK(sessionkeeper_store_stats(store, &st, &err));
    CHECK(st.creates == 1 + THREADS * ROUNDS);
    CHECK(st.errors_connection == 0 && st.errors_timeout == 0 && st.errors_unexpected == 0);
    sessionkeeper_store_free(store);
}

/* --- fork(): a handle opened before fork() works in the child ------------------- */

/* The child's whole job; its exit status is the number of failed steps. */
static int fork_child(sessionkeeper_store *store, const char *id)
{
    int bad = 0;
    sessionkeeper_session *s = NULL;
    bad += sessionkeeper_store_load(store, id, &s, NULL) != SESSIONKEEPER_OK || s == NULL;
    char *who = NULL;
    bad += sessionkeeper_session_get_string(s, "who", &who, NULL) != SESSIONKEEPER_OK || !str_eq(who, "parent");
    sessionkeeper_string_free(who);
    bad += sessionkeeper_session_set_string(s, "child", "was here", NULL) != SESSIONKEEPER_OK;
    sessionkeeper_save_outcome outcome = SESSIONKEEPER_SAVE_GONE;
    bad += sessionkeeper_store_save(store, id, s, &outcome, NULL) != SESSIONKEEPER_OK ||
           outcome != SESSIONKEEPER_SAVE_WRITTEN;
    sessionkeeper_session_free(s);
    return bad > 100 ? 100 : bad;
}

static void test_fork(const char *url)
{
    sessionkeeper_error *err = NULL;
    sessionkeeper_store *store = open_store(url, NULL, NULL, 0);
    if (!store)
        return;
    /* The parent uses the store first, so its runtime and connections exist. */
    sessionkeeper_session *s = sessionkeeper_session_new();
    OK(sessionkeeper_session_set_string(s, "who", "parent", &err));
    char *id = NULL;
    OK(sessionkeeper_store_create(store, s, &id, &err));
    sessionkeeper_session_free(s);
    if (!id) {
        sessionkeeper_store_free(store);
        return;
    }

    /* The child reports through a pipe rather than its exit status: under
     * valgrind the status also counts, as leaks, the parent's runtime and
     * connections that the child deliberately never frees (core/src/runtime.rs). */
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        close(fds[0]);
        unsigned char failures = (unsigned char)fork_child(store, id);
        _exit(write(fds[1], &failures, 1) == 1 ? 0 : 1);
    }
    close(fds[1]);

    /* Never hang: the documented behaviour is "works", so give it 60 s
     * (valgrind is slow), then kill it and fail. */
    int status = 0;
    pid_t done = 0;
    for (int waited = 0; child > 0 && waited < 60000; waited += 50) {
        done = waitpid(child, &status, WNOHANG);
        if (done != 0)
            break;
        sleep_ms(50);
    }
    unsigned char failures = 255;
    if (child > 0 && done == 0) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        fail(__LINE__, "the forked child hung using a store opened before fork()");
    } else {
        CHECK(done == child && WIFEXITED(status));
        CHECK(read(fds[0], &failures, 1) == 1 && failures == 0);
        if (failures != 0)
            fprintf(stderr, "    child: %d failed steps (255: no report), status %d\n", failures, status);
    }
    close(fds[0]);

    /* The parent's handle still works, and sees what the child wrote. */
    OK(sessionkeeper_store_load(store, id, &s, &err));
    char *str = NULL;
    OK(sessionkeeper_session_get_string(s, "child", &str, &err));
    CHECK(str_eq(str, "was here"));
    sessionkeeper_string_free(str);
    sessionkeeper_session_free(s);
    OK(sessionkeeper_store_destroy(store, id, NULL, &err));
    sessionkeeper_string_free(id);
    sessionkeeper_store_free(store);
}

/* --- error paths ------------------------------------------------------------------ */

static void test_config_errors(void)
{
    sessionkeeper_error *err = NULL;
    sessionkeeper_store *store = (sessionkeeper_store *)&err; /* garbage: must be reset to NULL */

    EXPECT_KEEP(SESSIONKEEPER_CONFIG, sessionkeeper_store_open("http://example.com", NULL, NULL, 0, &store, &err));
    CHECK(store == NULL);
    CHECK(!sessionkeeper_error_is_temporary(err));
    CHECK(str_eq(sessionkeeper_code_name((int)sessionkeeper_error_code(err)), "config"));
    sessionkeeper_error_free(err);
    err = NULL;
    EXPECT(SESSIONKEEPER_CONFIG, sessionkeeper_store_open("not a url", NULL, NULL, 0, &store, &err));
    EXPECT(SESSIONKEEPER_CONFIG, sessionkeeper_store_open("", NULL, NULL, 0, &store, &err));
    EXPECT(SESSIONKEEPER_CONFIG, sessionkeeper_store_open("redis://127.0.0.1:99999", NULL, NULL, 0, &store, &err));

    const char *bad_name[] = {"no_such_option"};
    const char *one[] = {"1"};
    EXPECT_KEEP(SESSIONKEEPER_CONFIG, sessionkeeper_store_open("memory://c", bad_name, one, 1, &store, &err));
    CHECK(err && strstr(sessionkeeper_error_message(err), "no_such_option") != NULL);
    sessionkeeper_error_free(err);
    err = NULL;
    const char *ttl[] = {"idle_ttl"};
    const char *forever[] = {"forever"};
    EXPECT(SESSIONKEEPER_CONFIG, sessionkeeper_store_open("memory://c", ttl, forever, 1, &store, &err));
    const char *codec[] = {"codec"};
    const char *yaml[] = {"yaml"};
    EXPECT(SESSIONKEEPER_CONFIG, sessionkeeper_store_open("memory://c", codec, yaml, 1, &store, &err));
    CHECK(store == NULL);

    /* A password never appears in a message. */
    EXPECT_KEEP(SESSIONKEEPER_CONFIG,
                sessionkeeper_store_open("redis://user:s3cr3tpw@127.0.0.1:6379", bad_name, one, 1, &store, &err));
    CHECK(err && strstr(sessionkeeper_error_message(err), "s3cr3tpw") == NULL);
    sessionkeeper_error_free(err);
    err = NULL;

    /* err may be NULL: only the code comes back. */
    CHECK(sessionkeeper_store_open("http://x", NULL, NULL, 0, &store, NULL) == SESSIONKEEPER_CONFIG);
    CHECK(store == NULL);
}

static void test_redis_down(const char *down_url)
{
    static const char *names[] = {"connect_timeout", "command_timeout"};
    static const char *values[] = {"300ms", "300ms"};
    sessionkeeper_error *err = NULL;
    sessionkeeper_store *store = open_store(down_url, names, values, 2); /* lazy: opening works */
    if (!store)
        return;
    char *gen = NULL;
    OK(sessionkeeper_id_generate(&gen, &err));
    sessionkeeper_session *s = (sessionkeeper_session *)&err;
    sessionkeeper_code code = sessionkeeper_store_load(store, gen, &s, &err);
    CHECK(code == SESSIONKEEPER_CONNECTION || code == SESSIONKEEPER_TIMEOUT);
    CHECK(s == NULL);
    CHECK(err != NULL && sessionkeeper_error_is_temporary(err) && sessionkeeper_error_code(err) == code);
    if (err)
        printf("  (Redis down reads as: %s: %s)\n", sessionkeeper_code_name((int)code), sessionkeeper_error_message(err));
    sessionkeeper_error_free(err);
    err = NULL;

    s = sessionkeeper_session_new();
    char *id = NULL;
    code = sessionkeeper_store_create(store, s, &id, &err);
    CHECK(code == SESSIONKEEPER_CONNECTION || code == SESSIONKEEPER_TIMEOUT);
    CHECK(id == NULL && sessionkeeper_error_is_temporary(err));
    sessionkeeper_string_free(id); /* NULL unless the check above failed */
    sessionkeeper_error_free(err);
    err = NULL;
    sessionkeeper_save_outcome outcome;
    code = sessionkeeper_store_save(store, gen, s, &outcome, NULL);
    /* An empty session saved against an empty baseline changes nothing, so no I/O. */
    CHECK(code == SESSIONKEEPER_OK && outcome == SESSIONKEEPER_SAVE_UNCHANGED);
    OK(sessionkeeper_session_set_int(s, "k", 1, &err));
    code = sessionkeeper_store_save(store, gen, s, &outcome, NULL);
    CHECK(code == SESSIONKEEPER_CONNECTION || code == SESSIONKEEPER_TIMEOUT);
    bool yes = true;
    code = sessionkeeper_store_exists(store, gen, &yes, NULL);
    CHECK((code == SESSIONKEEPER_CONNECTION || code == SESSIONKEEPER_TIMEOUT) && !yes);

    sessionkeeper_stats st;
    OK(sessionkeeper_store_stats(store, &st, &err));
    CHECK(st.errors_connection + st.errors_timeout >= 4);
    sessionkeeper_session_free(s);
    sessionkeeper_string_free(gen);
    sessionkeeper_store_free(store);
}

static void test_bad_ids(const char *url)
{
    sessionkeeper_error *err = NULL;
    sessionkeeper_store *store = open_store(url, NULL, NULL, 0);
    if (!store)
        return;
    const char *bad[] = {"", "short", "has spaces has spaces has spaces has spaces",
                         "../../../../etc/passwd/../../../../etc/passwd", "abcdefghijabcdefghijabcdefghij\xc3\xa9\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(!sessionkeeper_id_is_valid(bad[i]));
        sessionkeeper_session *s = (sessionkeeper_session *)&err;
        OK(sessionkeeper_store_load(store, bad[i], &s, &err)); /* "no session", never an error */
        CHECK(s == NULL);
        s = sessionkeeper_session_new();
        OK(sessionkeeper_session_set_int(s, "k", 1, &err));
        sessionkeeper_save_outcome outcome;
        EXPECT(SESSIONKEEPER_INVALID_ID, sessionkeeper_store_save(store, bad[i], s, &outcome, &err));
        bool flag = true;
        EXPECT(SESSIONKEEPER_INVALID_ID, sessionkeeper_store_insert(store, bad[i], s, &flag, &err));
        CHECK(!flag);
        OK(sessionkeeper_store_destroy(store, bad[i], &flag, &err));
        CHECK(!flag);
        flag = true;
        OK(sessionkeeper_store_exists(store, bad[i], &flag, &err));
        CHECK(!flag);
        flag = true;
        OK(sessionkeeper_store_touch(store, bad[i], &flag, &err));
        CHECK(!flag);
        char *new_id = (char *)&err;
        OK(sessionkeeper_store_renew(store, bad[i], &new_id, &err));
        CHECK(new_id == NULL);
        sessionkeeper_session_free(s);
    }
    CHECK(!sessionkeeper_id_is_valid(NULL));
    CHECK(sessionkeeper_id_is_valid("0123456789abcdef0123456789ABCDEF_-"));
    sessionkeeper_stats st;
    OK(sessionkeeper_store_stats(store, &st, &err));
    CHECK(st.invalid_ids >= 5);
    CHECK(st.errors_invalid_id >= 10);
    sessionkeeper_store_free(store);
}

static void test_too_large(const char *url)
{
    static const char *names[] = {"max_size"};
    static const char *values[] = {"1024"};
    sessionkeeper_error *err = NULL;
    sessionkeeper_store *store = open_store(url, names, values, 1);
    if (!store)
        return;
    char big[4097];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';

    sessionkeeper_session *s = sessionkeeper_session_new();
    OK(sessionkeeper_session_set_string(s, "big", big, &err));
    char *id = (char *)&err;
    EXPECT_KEEP(SESSIONKEEPER_TOO_LARGE, sessionkeeper_store_create(store, s, &id, &err));
    CHECK(id == NULL && !sessionkeeper_error_is_temporary(err));
    CHECK(err && strstr(sessionkeeper_error_message(err), "max_size") != NULL);
    CHECK(err && strstr(sessionkeeper_error_message(err), "xxxx") == NULL); /* no payload in messages */
    sessionkeeper_error_free(err);
    err = NULL;

    /* A stored session that grows too large is left as it was. */
    OK(sessionkeeper_session_set_string(s, "big", "small", &err));
    OK(sessionkeeper_store_create(store, s, &id, &err));
    OK(sessionkeeper_session_set_string(s, "big", big, &err));
    sessionkeeper_save_outcome outcome;
    EXPECT(SESSIONKEEPER_TOO_LARGE, sessionkeeper_store_save(store, id, s, &outcome, &err));
    sessionkeeper_session *l = NULL;
    OK(sessionkeeper_store_load(store, id, &l, &err));
    char *str = NULL;
    OK(sessionkeeper_session_get_string(l, "big", &str, &err));
    CHECK(str_eq(str, "small"));
    sessionkeeper_string_free(str);
    bool inserted = true;
    char *gen = NULL;
    OK(sessionkeeper_id_generate(&gen, &err));
    EXPECT(SESSIONKEEPER_TOO_LARGE, sessionkeeper_store_insert(store, gen, s, &inserted, &err));
    CHECK(!inserted);
    OK(sessionkeeper_store_destroy(store, id, NULL, &err));
    sessionkeeper_session_free(l);
    sessionkeeper_session_free(s);
    sessionkeeper_string_free(id);
    sessionkeeper_string_free(gen);
    sessionkeeper_store_free(store);
}

static void test_null_arguments(void)
{
    sessionkeeper_error *err = NULL;
    sessionkeeper_store *store = open_store("memory://nulls", NULL, NULL, 0);
    sessionkeeper_session *s = sessionkeeper_session_new();
    const char *id = "0123456789abcdef0123456789abcdef";
    sessionkeeper_store *st_out = NULL;
    sessionkeeper_session *s_out = NULL;
    char *str = NULL;
    bool flag = false;
    int64_t n = 0;
    sessionkeeper_save_outcome outcome;
    sessionkeeper_type type;
    sessionkeeper_stats stats;
    uint8_t *bytes = NULL;
    size_t len = 0;
    const char *one_name[] = {"key_prefix"};
    const char *null_entry[] = {NULL};

    EXPECT_KEEP(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_open(NULL, NULL, NULL, 0, &st_out, &err));
    CHECK(err && strstr(sessionkeeper_error_message(err), "url") != NULL);
    sessionkeeper_error_free(err);
    err = NULL;
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_open("memory://x", NULL, NULL, 0, NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_open("memory://x", NULL, NULL, 1, &st_out, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_open("memory://x", one_name, NULL, 1, &st_out, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_open("memory://x", one_name, null_entry, 1, &st_out, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_open("memory://x", null_entry, one_name, 1, &st_out, &err));
    CHECK(st_out == NULL);
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_with_idle_ttl(NULL, 1, &st_out, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_with_idle_ttl(store, 1, NULL, &err));

    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_load(NULL, id, &s_out, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_load(store, NULL, &s_out, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_load(store, id, NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_save(NULL, id, s, &outcome, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_save(store, NULL, s, &outcome, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_save(store, id, NULL, &outcome, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_save(store, id, s, NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_create(NULL, s, &str, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_create(store, NULL, &str, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_create(store, s, NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_insert(NULL, id, s, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_insert(store, NULL, s, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_insert(store, id, NULL, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_insert(store, id, s, NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_destroy(NULL, id, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_destroy(store, NULL, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_touch(NULL, id, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_touch(store, NULL, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_exists(NULL, id, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_exists(store, NULL, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_exists(store, id, NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_renew(NULL, id, &str, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_renew(store, NULL, &str, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_renew(store, id, NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_stats(NULL, &stats, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_store_stats(store, NULL, &err));

    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_type(NULL, "k", &type, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_type(s, NULL, &type, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_type(s, "k", NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_get_string(NULL, "k", &str, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_get_string(s, NULL, &str, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_get_string(s, "k", NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_get_int(NULL, "k", &n, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_get_int(s, NULL, &n, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_get_int(s, "k", NULL, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_get_int(s, "k", &n, NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_set_string(NULL, "k", "v", &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_set_string(s, NULL, "v", &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_set_string(s, "k", NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_set_int(NULL, "k", 1, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_set_int(s, NULL, 1, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_remove(NULL, "k", &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_remove(s, NULL, &flag, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_get_msgpack(NULL, &bytes, &len, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_get_msgpack(s, NULL, &len, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_get_msgpack(s, &bytes, NULL, &err));
    CHECK(bytes == NULL);
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_set_msgpack(NULL, (const uint8_t *)"\x80", 1, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_session_set_msgpack(s, NULL, 0, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_id_generate(NULL, &err));
    CHECK(sessionkeeper_session_len(s) == 0); /* nothing above changed the session */

    /* Accessors and every _free accept NULL. */
    CHECK(sessionkeeper_error_code(NULL) == SESSIONKEEPER_NULL_ARGUMENT);
    CHECK(sessionkeeper_error_message(NULL) != NULL);
    CHECK(!sessionkeeper_error_is_temporary(NULL));
    CHECK(sessionkeeper_session_len(NULL) == 0);
    sessionkeeper_meta meta;
    CHECK(!sessionkeeper_session_meta(NULL, &meta));
    CHECK(!sessionkeeper_session_meta(s, NULL));
    CHECK(!sessionkeeper_session_meta(s, &meta)); /* never loaded */
    sessionkeeper_store_free(NULL);
    sessionkeeper_session_free(NULL);
    sessionkeeper_error_free(NULL);
    sessionkeeper_string_free(NULL);
    sessionkeeper_bytes_free(NULL, 0);
    passed++;

    sessionkeeper_session_free(s);
    sessionkeeper_store_free(store);
}

static void test_invalid_utf8(void)
{
    static const char bad[] = "\xc3\x28 not utf-8 \xff";
    sessionkeeper_error *err = NULL;
    sessionkeeper_store *st_out = NULL;
    EXPECT_KEEP(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_store_open(bad, NULL, NULL, 0, &st_out, &err));
    CHECK(err && strstr(sessionkeeper_error_message(err), "url") != NULL);
    sessionkeeper_error_free(err);
    err = NULL;
    const char *names[] = {bad};
    const char *values[] = {"x"};
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_store_open("memory://u", names, values, 1, &st_out, &err));
    const char *names2[] = {"key_prefix"};
    const char *values2[] = {bad};
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_store_open("memory://u", names2, values2, 1, &st_out, &err));
    CHECK(st_out == NULL);

    sessionkeeper_store *store = open_store("memory://u", NULL, NULL, 0);
    sessionkeeper_session *s = sessionkeeper_session_new();
    sessionkeeper_session *s_out = NULL;
    sessionkeeper_save_outcome outcome;
    bool flag;
    char *str = NULL;
    int64_t n;
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_store_load(store, bad, &s_out, &err));
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_store_save(store, bad, s, &outcome, &err));
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_store_insert(store, bad, s, &flag, &err));
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_store_destroy(store, bad, &flag, &err));
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_store_renew(store, bad, &str, &err));
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_session_set_string(s, bad, "v", &err));
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_session_set_string(s, "k", bad, &err));
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_session_set_int(s, bad, 1, &err));
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_session_get_string(s, bad, &str, &err));
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_session_get_int(s, bad, &n, &flag, &err));
    CHECK(sessionkeeper_session_len(s) == 0);
    CHECK(!sessionkeeper_id_is_valid(bad));

    /* MessagePack that is not a session map, or not MessagePack at all. */
    OK(sessionkeeper_session_set_int(s, "keep", 7, &err));
    static const uint8_t garbage[][6] = {{0xc1}, {0x01}, {0x81, 0x01, 0x02}, {0xa2, 0xff, 0xfe}, {0x82, 0xa1, 'a'}};
    static const size_t lens[] = {1, 1, 3, 3, 3};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        EXPECT(SESSIONKEEPER_CODEC, sessionkeeper_session_set_msgpack(s, garbage[i], lens[i], &err));
    EXPECT(SESSIONKEEPER_CODEC, sessionkeeper_session_set_msgpack(s, garbage[0], 0, &err));
    CHECK(sessionkeeper_session_len(s) == 1); /* unchanged */

    /* Asking for the wrong type. */
    OK(sessionkeeper_session_set_string(s, "name", "bob", &err));
    str = (char *)&err;
    EXPECT(SESSIONKEEPER_WRONG_TYPE, sessionkeeper_session_get_string(s, "keep", &str, &err));
    CHECK(str == NULL);
    EXPECT(SESSIONKEEPER_WRONG_TYPE, sessionkeeper_session_get_int(s, "name", &n, &flag, &err));
    CHECK(!flag);

    sessionkeeper_session_free(s);
    sessionkeeper_store_free(store);
}

static void test_names(void)
{
    CHECK(str_eq(sessionkeeper_code_name(SESSIONKEEPER_OK), "ok"));
    CHECK(str_eq(sessionkeeper_code_name(SESSIONKEEPER_CONFIG), "config"));
    CHECK(str_eq(sessionkeeper_code_name(SESSIONKEEPER_TOO_LARGE), "too_large"));
    CHECK(str_eq(sessionkeeper_code_name(SESSIONKEEPER_INVALID_ID), "invalid_id"));
    CHECK(str_eq(sessionkeeper_code_name(SESSIONKEEPER_PANIC), "panic"));
    CHECK(str_eq(sessionkeeper_code_name(999), "unknown"));
    CHECK(str_eq(sessionkeeper_code_name(-1), "unknown"));
    CHECK(SESSIONKEEPER_OK == 0);
    CHECK(str_eq(sessionkeeper_version(), SESSIONKEEPER_HEADER_VERSION));
}

/* --- the shared-mode cookie ---------------------------------------------------------- */

static void test_cookie(void)
{
    sessionkeeper_error *err = NULL;
    static const char secret[] = "0123456789abcdef0123456789abcdef";  /* exactly 32 bytes */
    static const char id[] = "0123456789abcdef0123456789abcdef";
    /* "s:" + require('cookie-signature').sign(id, secret), as express-session issues it. */
    static const char expected[] = "s:0123456789abcdef0123456789abcdef.r6eyaAslLT1j3TgPMyaqot58P8sKOoMRZFfPjBFUiio";
    char *cookie = NULL, *got = NULL;

    OK(sessionkeeper_cookie_sign(id, secret, &cookie, &err));
    CHECK(str_eq(cookie, expected));

    const char *one[] = {secret};
    OK(sessionkeeper_cookie_unsign(cookie, one, 1, &got, &err));
    CHECK(str_eq(got, id));
    sessionkeeper_string_free(got);
    got = NULL;

    /* As cookie parsers hand the value over: percent-encoded, quoted, '+' as ' '. */
    static const char *forms[] = {
        "s%3A0123456789abcdef0123456789abcdef.r6eyaAslLT1j3TgPMyaqot58P8sKOoMRZFfPjBFUiio",
        "\"s:0123456789abcdef0123456789abcdef.r6eyaAslLT1j3TgPMyaqot58P8sKOoMRZFfPjBFUiio\"",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        OK(sessionkeeper_cookie_unsign(forms[i], one, 1, &got, &err));
        CHECK(str_eq(got, id));
        sessionkeeper_string_free(got);
        got = NULL;
    }

    /* A fresh id round-trips, including signatures holding '+' and '/'. */
    int plus_seen = 0;
    for (int i = 0; i < 40; i++) {
        char *fresh = NULL, *signed_value = NULL;
        OK(sessionkeeper_id_generate(&fresh, &err));
        OK(sessionkeeper_cookie_sign(fresh, secret, &signed_value, &err));
        if (signed_value && strchr(signed_value, '+')) {
            plus_seen++;
            char spaced[256];
            snprintf(spaced, sizeof spaced, "%s", signed_value);
            for (char *c = spaced; *c; c++)
                if (*c == '+')
                    *c = ' ';
            OK(sessionkeeper_cookie_unsign(spaced, one, 1, &got, &err));
            CHECK(str_eq(got, fresh));
            sessionkeeper_string_free(got);
            got = NULL;
        }
        OK(sessionkeeper_cookie_unsign(signed_value, one, 1, &got, &err));
        CHECK(str_eq(got, fresh));
        sessionkeeper_string_free(got);
        got = NULL;
        sessionkeeper_string_free(signed_value);
        sessionkeeper_string_free(fresh);
    }
    CHECK(plus_seen > 0); /* 40 signatures of 43 base64 characters: one holds a '+' */

    /* Rotation: the value signed with the old secret verifies while it is listed. */
    static const char old_secret[] = "the old secret, still long enough...";
    char *old_cookie = NULL;
    OK(sessionkeeper_cookie_sign(id, old_secret, &old_cookie, &err));
    CHECK(old_cookie != NULL && !str_eq(old_cookie, cookie));
    const char *rotated[] = {secret, old_secret};
    OK(sessionkeeper_cookie_unsign(old_cookie, rotated, 2, &got, &err));
    CHECK(str_eq(got, id));
    sessionkeeper_string_free(got);
    got = (char *)&err; /* garbage: must be reset to NULL */
    OK(sessionkeeper_cookie_unsign(old_cookie, one, 1, &got, &err));
    CHECK(got == NULL);

    /* What does not verify is "no session": OK with a NULL id, never an error. */
    char tampered[128];
    snprintf(tampered, sizeof tampered, "%s", expected);
    tampered[2] = '1';
    static const char not_utf8[] = "s:\xff\xfe.abc";
    const char *bad[] = {id, tampered, expected + 2, "s:", "s:.", "%", "", "s:short.abc", not_utf8,
                         "s:0123456789abcdef0123456789abcdef.r6eyaAslLT1j3TgPMyaqot58P8sKOoMRZFfPjBFUiioX"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        got = (char *)&err;
        OK(sessionkeeper_cookie_unsign(bad[i], one, 1, &got, &err));
        CHECK(got == NULL);
    }
    got = (char *)&err;
    EXPECT(SESSIONKEEPER_CONFIG, sessionkeeper_cookie_unsign(cookie, one, 0, &got, &err)); /* nothing could verify */
    CHECK(got == NULL);

    /* Short secrets are a configuration error, whatever the value. */
    sessionkeeper_string_free(cookie);
    cookie = (char *)&err; /* garbage: must be reset to NULL */
    EXPECT_KEEP(SESSIONKEEPER_CONFIG, sessionkeeper_cookie_sign(id, "short", &cookie, &err));
    CHECK(err && strstr(sessionkeeper_error_message(err), "32") != NULL);
    CHECK(!sessionkeeper_error_is_temporary(err));
    sessionkeeper_error_free(err);
    err = NULL;
    CHECK(cookie == NULL);
    const char *short_one[] = {secret, "short"};
    got = (char *)&err;
    EXPECT(SESSIONKEEPER_CONFIG, sessionkeeper_cookie_unsign(expected, short_one, 2, &got, &err));
    CHECK(got == NULL);
    EXPECT(SESSIONKEEPER_CONFIG, sessionkeeper_cookie_unsign(not_utf8, short_one, 2, &got, &err));
    char *out = (char *)&err;
    EXPECT(SESSIONKEEPER_INVALID_ID, sessionkeeper_cookie_sign("not an id", secret, &out, &err));
    CHECK(out == NULL);
    EXPECT(SESSIONKEEPER_INVALID_UTF8, sessionkeeper_cookie_sign("\xc3\x28", secret, &out, &err));

    /* NULL arguments. */
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_cookie_sign(NULL, secret, &out, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_cookie_sign(id, NULL, &out, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_cookie_sign(id, secret, NULL, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_cookie_unsign(NULL, one, 1, &got, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_cookie_unsign(expected, NULL, 1, &got, &err));
    const char *null_entry[] = {secret, NULL};
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_cookie_unsign(expected, null_entry, 2, &got, &err));
    EXPECT(SESSIONKEEPER_NULL_ARGUMENT, sessionkeeper_cookie_unsign(expected, one, 1, NULL, &err));
    CHECK(sessionkeeper_cookie_sign(id, "short", &out, NULL) == SESSIONKEEPER_CONFIG); /* err may be NULL */

    sessionkeeper_string_free(old_cookie);
}

/* --- main ------------------------------------------------------------------------- */

static void run(const char *name, const char *topology, void (*fn)(const char *), const char *url)
{
    char label[96];
    snprintf(label, sizeof label, "%s/%s", name, topology);
    current = label;
    int before = failed;
    fn(url);
    printf("%s %s\n", failed == before ? "ok  " : "FAIL", label);
    fflush(stdout);
}

static void run0(const char *name, void (*fn)(void))
{
    current = name;
    int before = failed;
    fn();
    printf("%s %s\n", failed == before ? "ok  " : "FAIL", name);
    fflush(stdout);
}

int main(void)
{
    const char *require = getenv("SK_REQUIRE_REDIS");
    const char *down = getenv("SK_DOWN_URL");
    struct {
        const char *name;
        const char *url;
    } topologies[] = {
        {"memory", "memory://ctest"},
        {"standalone", getenv("SK_REDIS_URL")},
        {"cluster", getenv("SK_CLUSTER_URL")},
    };

    run0("names", test_names);
    run0("config errors", test_config_errors);
    run0("NULL arguments", test_null_arguments);
    run0("invalid UTF-8, codec and type errors", test_invalid_utf8);
    run0("shared-mode cookie", test_cookie);
    run("Redis down", "standalone", test_redis_down, down && *down ? down : "redis://127.0.0.1:1");

    for (size_t i = 0; i < sizeof topologies / sizeof topologies[0]; i++) {
        const char *url = topologies[i].url;
        if (url == NULL || *url == '\0') {
            if (require && strcmp(require, "1") == 0) {
                current = topologies[i].name;
                fail(__LINE__, "SK_REQUIRE_REDIS=1 but no URL for the %s topology", topologies[i].name);
            } else {
                printf("skip %s (no URL in the environment)\n", topologies[i].name);
            }
            continue;
        }
        run("lifecycle", topologies[i].name, test_lifecycle, url);
        run("bad ids", topologies[i].name, test_bad_ids, url);
        run("too large", topologies[i].name, test_too_large, url);
        run("threads", topologies[i].name, test_threads, url);
        if (strcmp(topologies[i].name, "memory") != 0) /* memory:// is per process by design */
            run("fork", topologies[i].name, test_fork, url);
    }

    printf("test_sessionkeeper: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
