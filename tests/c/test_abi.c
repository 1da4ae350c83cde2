/*
 * The C ABI from C: every function, its error contract, and threads. Run by tests/c_abi.rs
 * against the emulator (PAN_API_BASE_URL set), linked once against the shared and once
 * against the static library. Prints "N passed, N failed" and "creates=K" (the number of
 * tasks it expects the emulator to have created), and exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pan_offline.h"

#include "check.h"

static int creates; /* successful creates, for the harness to compare with the emulator */

static const char *TOKEN = "test-token";
static char url_opts[512];

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* One create that must fail with `want`, leave the out-param alone and name `mention`. */
static void expect_fail(const char *token, const char *opts, int32_t want, const char *mention) {
    int64_t id = -77;
    int32_t rc = pan_offline_download(token, opts, &id);
    if (rc != want) fprintf(stderr, "  for %s: got %d, want %d\n", opts ? opts : "(NULL)", (int)rc, (int)want);
    CHECK(rc == want);
    CHECK(pan_last_error_code() == want);
    CHECK(id == -77);
    CHECK(pan_last_error_message()[0] != '\0');
    if (mention && !contains(pan_last_error_message(), mention))
        fprintf(stderr, "  message %s lacks %s\n", pan_last_error_message(), mention);
    CHECK(mention == NULL || contains(pan_last_error_message(), mention));
    CHECK(!contains(pan_last_error_message(), TOKEN));
}

static void test_version(void) {
    CHECK(strcmp(pan_version(), PAN_OFFLINE_VERSION) == 0);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", PAN_OFFLINE_VERSION_MAJOR, PAN_OFFLINE_VERSION_MINOR,
             PAN_OFFLINE_VERSION_PATCH);
    CHECK(strcmp(buf, pan_version()) == 0);
}

static void test_success(void) {
    int64_t id = 0;
    int32_t rc = pan_offline_download(TOKEN, url_opts, &id);
    CHECK(rc == PAN_OK);
    CHECK(id > 0);
    CHECK(pan_last_error_code() == PAN_OK);
    CHECK(strcmp(pan_last_error_message(), "") == 0);
    CHECK(pan_last_api_code() == 0);
    CHECK(contains(pan_last_trace_id(), "_emulator"));
    creates += rc == PAN_OK;

    int64_t id2 = 0;
    rc = pan_offline_download("Bearer test-token", url_opts, &id2);
    CHECK(rc == PAN_OK && id2 > id);
    creates += rc == PAN_OK;
}

static void test_bad_input(void) {
    expect_fail(NULL, url_opts, PAN_ERR_NULL_ARGUMENT, "token");
    expect_fail(TOKEN, NULL, PAN_ERR_NULL_ARGUMENT, "json_opts");
    CHECK(pan_offline_download(TOKEN, url_opts, NULL) == PAN_ERR_NULL_ARGUMENT);
    CHECK(contains(pan_last_error_message(), "task_id_out"));
    expect_fail("tok\xff", url_opts, PAN_ERR_INVALID_UTF8, "token");
    expect_fail(TOKEN, "{\"url\":\"http://x/\xc3\x28\"}", PAN_ERR_INVALID_UTF8, "json_opts");
    expect_fail(TOKEN, "{\"url\":", PAN_ERR_INVALID_JSON, NULL);
    expect_fail(TOKEN, "", PAN_ERR_INVALID_JSON, NULL);
    expect_fail(TOKEN, "[\"url\"]", PAN_ERR_INVALID_ARGUMENT, "object");
    expect_fail(TOKEN, "{}", PAN_ERR_INVALID_ARGUMENT, "url");
    expect_fail(TOKEN, "{\"url\":\"magnet:?xt=urn:btih:x\"}", PAN_ERR_INVALID_ARGUMENT, "url");
    expect_fail(TOKEN, "{\"url\":\"http://x/\",\"dirId\":1}", PAN_ERR_INVALID_ARGUMENT, "dirId");
    expect_fail(TOKEN, "{\"url\":\"http://x/\",\"dirID\":0}", PAN_ERR_INVALID_ARGUMENT, "dirID");
    expect_fail(TOKEN, "{\"url\":\"http://x/\",\"dirID\":\"7\"}", PAN_ERR_INVALID_ARGUMENT, "dirID");
    expect_fail(TOKEN, "{\"url\":\"http://x/\",\"fileName\":\"\"}", PAN_ERR_INVALID_ARGUMENT, "fileName");
    expect_fail(TOKEN, "{\"url\":\"http://x/\",\"callBackUrl\":\"cb\"}", PAN_ERR_INVALID_ARGUMENT, "callBackUrl");
    expect_fail("", url_opts, PAN_ERR_INVALID_ARGUMENT, "token");
    expect_fail("test-token\r\nX-Evil: 1", url_opts, PAN_ERR_INVALID_ARGUMENT, "token");
    /* Options larger than the documented 64 KiB limit. */
    size_t big = 100 * 1024;
    char *huge = malloc(big + 64);
    if (huge) {
        strcpy(huge, "{\"url\":\"http://x/\",\"fileName\":\"");
        size_t n = strlen(huge);
        memset(huge + n, 'a', big);
        strcpy(huge + n + big, "\"}");
        expect_fail(TOKEN, huge, PAN_ERR_INVALID_ARGUMENT, "limit");
        free(huge);
    }
}

static void test_server_errors(void) {
    expect_fail("wrong-token", url_opts, PAN_ERR_UNAUTHORIZED, "401");
    CHECK(pan_last_api_code() == 401);
    CHECK(contains(pan_last_trace_id(), "_emulator"));
    CHECK(contains(pan_last_error_message(), pan_last_trace_id()));
}

static void test_error_copy(void) {
    int64_t id;
    CHECK(pan_offline_download(TOKEN, "{}", &id) == PAN_ERR_INVALID_ARGUMENT);
    const char *msg = pan_last_error_message();
    size_t full = strlen(msg);
    CHECK(pan_last_error_copy(NULL, 0) == full);
    char small[8];
    memset(small, 'X', sizeof small);
    CHECK(pan_last_error_copy(small, sizeof small) == full);
    CHECK(small[7] == '\0' && strncmp(small, msg, 7) == 0);
    char one[1] = {'X'};
    CHECK(pan_last_error_copy(one, 1) == full && one[0] == '\0');
    char all[1024];
    CHECK(pan_last_error_copy(all, sizeof all) == full && strcmp(all, msg) == 0);
    /* The getters do not reset the error. */
    CHECK(strcmp(pan_last_error_message(), all) == 0);
    /* A success resets it. */
    CHECK(pan_offline_download(TOKEN, url_opts, &id) == PAN_OK);
    creates++;
    CHECK(pan_last_error_copy(NULL, 0) == 0 && pan_last_error_message()[0] == '\0');
}

static void test_strerror(void) {
    for (int32_t c = PAN_OK; c <= PAN_ERR_INTERNAL; c++) CHECK(pan_strerror(c) && pan_strerror(c)[0]);
    CHECK(contains(pan_strerror(-1), "unknown"));
    CHECK(contains(pan_strerror(100000), "unknown"));
    CHECK(strcmp(pan_strerror(PAN_ERR_NULL_ARGUMENT), pan_strerror(PAN_ERR_TLS)) != 0);
}

/* Threads: each sees its own results and its own error text. */
#define THREADS 8
#define CALLS 30
static int thread_failures[THREADS];
static int thread_creates[THREADS];

static void *worker(void *arg) {
    int t = (int)(size_t)arg;
    for (int i = 0; i < CALLS; i++) {
        int64_t id = -1;
        int32_t rc;
        switch ((i + t) % 3) {
        case 0:
            rc = pan_offline_download(TOKEN, url_opts, &id);
            if (rc != PAN_OK || id <= 0 || pan_last_error_message()[0] != '\0') thread_failures[t]++;
            else thread_creates[t]++;
            break;
        case 1:
            rc = pan_offline_download("wrong-token", url_opts, &id);
            if (rc != PAN_ERR_UNAUTHORIZED || id != -1 || pan_last_api_code() != 401 ||
                !contains(pan_last_error_message(), "invalid access_token"))
                thread_failures[t]++;
            break;
        default:
            rc = pan_offline_download(TOKEN, "{\"url\":\"http://x/\",\"dirID\":-1}", &id);
            if (rc != PAN_ERR_INVALID_ARGUMENT || id != -1 || !contains(pan_last_error_message(), "dirID") ||
                pan_last_api_code() != 0)
                thread_failures[t]++;
        }
    }
    return NULL;
}

static void test_threads(void) {
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) CHECK(pthread_create(&th[t], NULL, worker, (void *)(size_t)t) == 0);
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        CHECK(thread_failures[t] == 0);
        creates += thread_creates[t];
    }
}

int main(void) {
    const char *base = getenv("PAN_API_BASE_URL");
    if (!base) {
        fprintf(stderr, "set PAN_API_BASE_URL to the emulator's URL\n");
        return 2;
    }
    snprintf(url_opts, sizeof url_opts, "{\"url\":\"%s/files/c.bin?size=1000\",\"fileName\":\"c.bin\"}", base);
    test_version();
    test_success();
    test_bad_input();
    test_server_errors();
    test_error_copy();
    test_strerror();
    test_threads();
    printf("creates=%d\n", creates);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
