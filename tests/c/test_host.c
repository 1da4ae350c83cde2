/* Host programs as they are: pan_* called from a thread-exit destructor (as logging libraries
 * do from pthread_key_create destructors), a thread's first call made there, a pan_* call nested in the progress callback of a
 * wait, of wait_many and of a batch (the service's refusal in it, trace ID and all, stays
 * behind in none of them), and a wait with timeout_ms 0. Needs PAN_API_BASE_URL (the emulator, token
 * "test-token"). Prints "N passed, N failed". */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static pthread_key_t key;
static int destructor_ran;
static int destructor_ok;

/* Runs after the thread's own storage may be gone: every export must still answer. */
static void at_thread_exit(void *value) {
    (void)value;
    int ok = 1;
    const char *m = pan_last_error_message();
    ok &= m != NULL;
    const char *t = pan_last_trace_id();
    ok &= t != NULL;
    char buf[64];
    size_t n = pan_last_error_copy(buf, sizeof buf);
    ok &= n < sizeof buf && buf[n] == '\0';
    (void)pan_last_error_code();
    (void)pan_last_api_code();
    ok &= pan_strerror(PAN_ERR_NETWORK) != NULL && pan_version() != NULL;
    int64_t id = 0;
    /* A fallible call: it cannot store its error, but it returns its status. */
    ok &= pan_offline_download(NULL, "{}", &id) == PAN_ERR_NULL_ARGUMENT;
    ok &= pan_offline_download("test-token", "not json", &id) == PAN_ERR_INVALID_JSON;
    int32_t st;
    int64_t file;
    ok &= pan_callback_parse("{\"status\":0,\"fileID\":3}", &st, &file, NULL, 0) == PAN_OK;
    destructor_ok = ok;
    destructor_ran = 1;
}

static void *worker(void *arg) {
    (void)arg;
    pthread_setspecific(key, (void *)1);
    /* Leave an error behind, so the thread's storage is in use. */
    int64_t id;
    pan_offline_download("test-token", "{\"url\":\"ftp://x\"}", &id);
    return NULL;
}

/* A thread's first call made from a key destructor: a whole create (the thread's error slot,
 * token caches and buffers are all made there). They must be freed when the thread ends:
 * .ci/c-checks.sh runs this program under valgrind, which fails on memory definitely lost. */
static pthread_key_t first_key;
static int first_call_ok;

static void first_call_at_exit(void *value) {
    (void)value;
    int64_t id = 0;
    first_call_ok = pan_offline_download("test-token", "{\"url\":\"https://example.com/k.mp4\"}", &id) == PAN_OK &&
                    id > 0 && strstr(pan_last_trace_id(), "emulator") != NULL;
}

static void *silent_worker(void *arg) {
    (void)arg;
    pthread_setspecific(first_key, (void *)1);
    return NULL;
}

struct nested {
    pan_client *client;
    int calls;
};

/* Makes a failing call of its own on every poll. */
static int32_t nested_call(void *user_data, int64_t task_id, double progress, int32_t status) {
    (void)task_id;
    (void)progress;
    (void)status;
    struct nested *n = user_data;
    double p;
    int32_t s;
    if (pan_offline_download_progress(n->client, "test-token", -5, &p, &s) == PAN_ERR_INVALID_ARGUMENT)
        n->calls++;
    return 0;
}

/* Makes a call the service refuses (401, with a trace ID) on every poll or item. */
static char nested_trace[256];
static int32_t nested_refused(void *user_data, int64_t task_id, double progress, int32_t status) {
    (void)task_id;
    (void)progress;
    (void)status;
    struct nested *n = user_data;
    int64_t id;
    if (pan_client_offline_download(n->client, "wrong-token", "{\"url\":\"https://example.com/r.mp4\"}", &id) ==
        PAN_ERR_UNAUTHORIZED)
        n->calls++;
    snprintf(nested_trace, sizeof nested_trace, "%s", pan_last_trace_id());
    return 0;
}

static int32_t nested_item(void *user_data, size_t index, int32_t status, int64_t task_id) {
    (void)index;
    return nested_refused(user_data, task_id, 0, status);
}

/* 4. A batch callback that frees the client of the batch (issue 19: a use-after-free under
 * valgrind): the free waits for the batch; calls made with the client meanwhile are refused. */
struct freeing {
    pan_client *client;
    int freed;
    int after_free;
    int items;
};

static int32_t free_in_callback(void *user_data, size_t index, int32_t status, int64_t task_id) {
    (void)index, (void)status, (void)task_id;
    struct freeing *f = user_data;
    f->items++;
    if (!f->freed) {
        pan_client_free(f->client);
        f->freed = 1;
        int64_t id;
        f->after_free = pan_client_offline_download(f->client, "test-token",
                                                    "{\"url\":\"https://example.com/z.mp4\"}", &id);
    }
    return 0;
}

int main(void) {
    char config[512];
    const char *base = getenv("PAN_API_BASE_URL");
    CHECK(base != NULL);
    if (!base)
        return 1;
    snprintf(config, sizeof config, "{\"baseUrl\":\"%s\",\"pollIntervalMs\":200}", base);
    pan_client *c = pan_client_new(config);
    CHECK(c != NULL);

    /* 1. Thread-exit destructors. */
    CHECK(pthread_key_create(&key, at_thread_exit) == 0);
    for (int i = 0; i < 4; i++) {
        pthread_t th;
        destructor_ran = destructor_ok = 0;
        CHECK(pthread_create(&th, NULL, worker, NULL) == 0);
        CHECK(pthread_join(th, NULL) == 0);
        CHECK(destructor_ran && destructor_ok);
    }

    /* 1b. A thread whose first call is made in a key destructor. */
    CHECK(pthread_key_create(&first_key, first_call_at_exit) == 0);
    for (int i = 0; i < 4; i++) {
        pthread_t th;
        first_call_ok = 0;
        CHECK(pthread_create(&th, NULL, silent_worker, NULL) == 0);
        CHECK(pthread_join(th, NULL) == 0);
        CHECK(first_call_ok);
    }

    /* 2. A call nested in the callback leaves nothing behind: the wait's outcome is what the
     * error state shows. */
    int64_t task = 0;
    CHECK(pan_client_offline_download(c, "test-token", "{\"url\":\"https://example.com/n.mp4\"}", &task) == PAN_OK);
    struct nested n = {c, 0};
    int32_t status = -1;
    CHECK(pan_offline_download_wait(c, "test-token", task, 20000, nested_call, &n, &status) == PAN_OK);
    CHECK(status == PAN_TASK_SUCCEEDED);
    CHECK(n.calls > 0);
    CHECK(pan_last_error_code() == PAN_OK);
    CHECK(strcmp(pan_last_error_message(), "") == 0);
    CHECK(pan_last_api_code() == 0);
    CHECK(strstr(pan_last_trace_id(), "emulator") != NULL); /* the last poll's, not "" */

    /* 2b. Nor does a call the service refused, trace ID and all, nested in wait_many's or a
     * batch's callback: they record no trace ID of their own, so "" after a success. */
    int64_t tasks[2] = {task, 0};
    CHECK(pan_client_offline_download(c, "test-token", "{\"url\":\"https://example.com/m.mp4\"}", &tasks[1]) == PAN_OK);
    int32_t statuses[2] = {-1, -1};
    n.calls = 0;
    CHECK(pan_offline_download_wait_many(c, "test-token", tasks, 2, 20000, nested_refused, &n, statuses) == PAN_OK);
    CHECK(n.calls > 0 && strstr(nested_trace, "emulator") != NULL);
    CHECK(pan_last_error_code() == PAN_OK && pan_last_api_code() == 0);
    CHECK(strcmp(pan_last_trace_id(), "") == 0);
    char *results = NULL;
    n.calls = 0;
    CHECK(pan_offline_download_batch(c, "test-token", "[{\"url\":\"https://example.com/b.mp4\"}]", NULL, nested_item, &n,
                                     &results) == PAN_OK);
    CHECK(n.calls > 0);
    CHECK(pan_last_error_code() == PAN_OK && pan_last_api_code() == 0);
    CHECK(strcmp(pan_last_trace_id(), "") == 0);
    pan_string_free(results);

    /* 3. timeout_ms 0 polls once. A finished task: PAN_OK at once. */
    status = -1;
    CHECK(pan_offline_download_wait(c, "test-token", task, 0, NULL, NULL, &status) == PAN_OK);
    CHECK(status == PAN_TASK_SUCCEEDED);
    int64_t fresh = 0;
    CHECK(pan_client_offline_download(c, "test-token", "{\"url\":\"https://example.com/f.mp4\"}", &fresh) == PAN_OK);
    CHECK(pan_offline_download_wait(c, "test-token", fresh, 0, NULL, NULL, &status) == PAN_ERR_TIMEOUT);

    pan_client_free(c);

    {
        char cfg[512];
        snprintf(cfg, sizeof cfg, "{\"baseUrl\":\"%s\"}", getenv("PAN_API_BASE_URL"));
        struct freeing f = {pan_client_new(cfg), 0, -1, 0};
        CHECK(f.client != NULL);
        char *res = NULL;
        CHECK(pan_offline_download_batch(f.client, "test-token",
                                         "[{\"url\":\"https://example.com/f1.mp4\"},"
                                         "{\"url\":\"https://example.com/f2.mp4\"},"
                                         "{\"url\":\"https://example.com/f3.mp4\"}]",
                                         NULL, free_in_callback, &f, &res) == PAN_OK);
        CHECK(f.items == 3);
        CHECK(f.after_free == PAN_ERR_INVALID_ARGUMENT);
        CHECK(res != NULL && strstr(res, "\"taskID\"") != NULL);
        pan_string_free(res);
        /* The client is freed now (valgrind in .ci/c-checks.sh: no leak, no invalid read). */
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
