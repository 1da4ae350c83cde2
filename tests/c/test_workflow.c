/*
 * The workflow API from C: clients, progress, waiting with a callback, cancelling, callbacks,
 * access tokens, image hosting. Run by tests/c_abi.rs against the emulator
 * (PAN_API_BASE_URL set). Prints "N passed, N failed"; exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pan_offline.h"

#include "check.h"

static const char *base;
static char small_src[512], big_src[512], missing_src[512];

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

struct seen {
    int calls;
    int64_t task_id;
    double last_progress;
    int32_t last_status;
    int stop_after; /* cancel after this many calls; 0 never */
};

static int32_t on_progress(void *user_data, int64_t task_id, double progress, int32_t status) {
    struct seen *s = user_data;
    s->calls++;
    s->task_id = task_id;
    s->last_progress = progress;
    s->last_status = status;
    return s->stop_after && s->calls >= s->stop_after;
}

static void test_client_config(void) {
    CHECK(pan_client_new("{\"timeoutMS\":5}") == NULL);
    CHECK(pan_last_error_code() == PAN_ERR_INVALID_ARGUMENT);
    CHECK(contains(pan_last_error_message(), "timeoutMS"));
    CHECK(pan_client_new("{\"timeoutMs\":\"5\"}") == NULL);
    CHECK(contains(pan_last_error_message(), "timeoutMs"));
    CHECK(pan_client_new("{\"baseUrl\":\"http://example.com\"}") == NULL);
    CHECK(contains(pan_last_error_message(), "cleartext"));
    CHECK(pan_client_new("{") == NULL);
    CHECK(pan_last_error_code() == PAN_ERR_INVALID_JSON);
    CHECK(pan_client_new("\xff") == NULL);
    CHECK(pan_last_error_code() == PAN_ERR_INVALID_UTF8);
    CHECK(pan_client_new("{\"caFile\":\"/nonexistent/ca.pem\"}") == NULL);
    CHECK(pan_last_error_code() == PAN_ERR_INVALID_ARGUMENT);
    CHECK(contains(pan_last_error_message(), "caFile"));
    pan_client *c = pan_client_new(NULL);
    CHECK(c != NULL);
    CHECK(pan_last_error_code() == PAN_OK);
    CHECK(pan_last_error_message()[0] == '\0');
    pan_client_free(c);
    pan_client_free(NULL);
}

static void test_create_progress_wait(pan_client *c) {
    int64_t id = 0;
    CHECK(pan_client_offline_download(c, NULL, small_src, &id) == PAN_OK && id > 0);
    double progress = -1;
    int32_t status = -1;
    CHECK(pan_offline_download_progress(c, NULL, id, &progress, &status) == PAN_OK);
    CHECK(progress >= 0 && progress <= 100);
    CHECK(status >= PAN_TASK_DOWNLOADING && status <= PAN_TASK_RETRYING);
    CHECK(contains(pan_last_trace_id(), "_emulator"));

    struct seen s = {0, 0, 0, -1, 0};
    status = -1;
    CHECK(pan_offline_download_wait(c, NULL, id, 20000, on_progress, &s, &status) == PAN_OK);
    CHECK(status == PAN_TASK_SUCCEEDED);
    CHECK(s.calls >= 1 && s.task_id == id && s.last_progress == 100.0 && s.last_status == PAN_TASK_SUCCEEDED);

    /* NULL callback is fine; the default client (NULL) with an explicit token too. */
    CHECK(pan_offline_download_wait(NULL, "test-token", id, 5000, NULL, NULL, &status) == PAN_OK);
    CHECK(status == PAN_TASK_SUCCEEDED);

    /* Out-params stay untouched on failure. */
    progress = -5;
    status = -5;
    CHECK(pan_offline_download_progress(c, NULL, -1, &progress, &status) == PAN_ERR_INVALID_ARGUMENT);
    CHECK(progress == -5 && status == -5);
    CHECK(pan_offline_download_progress(c, NULL, id, NULL, &status) == PAN_ERR_NULL_ARGUMENT);
    CHECK(contains(pan_last_error_message(), "progress_out"));
    CHECK(pan_offline_download_wait(c, NULL, id, 100, NULL, NULL, NULL) == PAN_ERR_NULL_ARGUMENT);
}

static void test_failed_cancelled_timeout(pan_client *c) {
    int64_t id = 0;
    int32_t status = -1;
    CHECK(pan_client_offline_download(c, NULL, missing_src, &id) == PAN_OK);
    CHECK(pan_offline_download_wait(c, NULL, id, 10000, NULL, NULL, &status) == PAN_OK);
    CHECK(status == PAN_TASK_FAILED);

    CHECK(pan_client_offline_download(c, NULL, big_src, &id) == PAN_OK);
    struct seen s = {0, 0, 0, -1, 2};
    status = -7;
    CHECK(pan_offline_download_wait(c, NULL, id, -1, on_progress, &s, &status) == PAN_ERR_CANCELLED);
    CHECK(s.calls == 2 && status == -7);
    CHECK(contains(pan_last_error_message(), "cancelled"));

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(pan_offline_download_wait(c, NULL, id, 600, NULL, NULL, &status) == PAN_ERR_TIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(ms >= 550 && ms < 1500);
}

static void test_callback_parse(void) {
    int32_t status = -1;
    int64_t file_id = -1;
    char reason[16];
    CHECK(pan_callback_parse("{\"url\": \"http://dc.com/resource.jpg\", \"status\": 0, \"failReason\": \"\", \"fileID\": 100}",
                             &status, &file_id, reason, sizeof reason) == PAN_OK);
    CHECK(status == PAN_CALLBACK_SUCCEEDED && file_id == 100 && reason[0] == '\0');
    CHECK(pan_callback_parse("{\"status\":1,\"fileReason\":\"the source answered 404 Not Found\"}",
                             &status, &file_id, reason, sizeof reason) == PAN_OK);
    CHECK(status == PAN_CALLBACK_FAILED && file_id == 0);
    CHECK(strlen(reason) == sizeof reason - 1 && strncmp(reason, "the source answe", 15) == 0);
    CHECK(pan_callback_parse("{\"status\":1,\"failReason\":\"x\"}", &status, &file_id, NULL, 0) == PAN_OK);
    status = -3;
    CHECK(pan_callback_parse("{\"status\":7}", &status, &file_id, reason, sizeof reason) == PAN_ERR_INVALID_ARGUMENT);
    CHECK(status == -3 && contains(pan_last_error_message(), "status"));
    CHECK(pan_callback_parse("not json", &status, &file_id, reason, sizeof reason) == PAN_ERR_INVALID_JSON);
    CHECK(pan_callback_parse(NULL, &status, &file_id, reason, sizeof reason) == PAN_ERR_NULL_ARGUMENT);
    CHECK(pan_callback_parse("{\"status\":0}", NULL, &file_id, reason, sizeof reason) == PAN_ERR_NULL_ARGUMENT);
    CHECK(pan_callback_parse("{\"status\":0}", &status, &file_id, NULL, 5) == PAN_ERR_NULL_ARGUMENT);
}

static void test_access_token(pan_client *with_credentials) {
    char *token = NULL;
    int64_t expires = 0;
    CHECK(pan_access_token(with_credentials, NULL, NULL, &token, &expires) == PAN_OK);
    CHECK(token != NULL && contains(token, "tok-test-client-"));
    CHECK(expires > (int64_t)time(NULL) + 86400);
    if (token) {
        int64_t id = 0;
        CHECK(pan_client_offline_download(NULL, token, small_src, &id) == PAN_OK);
    }
    pan_string_free(token);
    pan_string_free(NULL);
    token = NULL;
    CHECK(pan_access_token(with_credentials, "test-client", "wrong", &token, NULL) == PAN_ERR_UNAUTHORIZED);
    CHECK(token == NULL && !contains(pan_last_error_message(), "wrong\""));
    /* A bad argument is reported even when configured credentials could stand in for it. */
    CHECK(pan_access_token(with_credentials, "\xff", NULL, &token, NULL) == PAN_ERR_INVALID_UTF8);
    CHECK(token == NULL && contains(pan_last_error_message(), "client_id"));
    pan_client *plain = pan_client_new(NULL);
    CHECK(pan_access_token(plain, NULL, NULL, &token, NULL) == PAN_ERR_NULL_ARGUMENT);
    CHECK(pan_access_token(plain, "test-client", "test-secret", NULL, NULL) == PAN_ERR_NULL_ARGUMENT);
    /* Without credentials, a NULL token cannot work. */
    int64_t id = 0;
    CHECK(pan_client_offline_download(plain, NULL, small_src, &id) == PAN_ERR_NULL_ARGUMENT);
    pan_client_free(plain);
}

static void test_image_hosting(pan_client *c) {
    char opts[600];
    snprintf(opts, sizeof opts, "{\"url\":\"%s/files/p.png?size=2000\",\"businessDirID\":\"42\",\"fileName\":\"p.png\"}", base);
    int64_t id = 0;
    CHECK(pan_oss_offline_download(c, NULL, opts, &id) == PAN_OK && id > 0);
    double progress;
    int32_t status;
    CHECK(pan_oss_offline_download_progress(c, NULL, id, &progress, &status) == PAN_OK);
    CHECK(progress == (double)(int64_t)progress);
    CHECK(pan_oss_offline_download(c, NULL, "{\"url\":\"http://x/a.png\",\"businessDirID\":42}", &id) == PAN_ERR_INVALID_ARGUMENT);
    CHECK(contains(pan_last_error_message(), "businessDirID"));
}

int main(void) {
    base = getenv("PAN_API_BASE_URL");
    if (!base) {
        fprintf(stderr, "set PAN_API_BASE_URL to the emulator's URL\n");
        return 2;
    }
    snprintf(small_src, sizeof small_src, "{\"url\":\"%s/files/s.bin?size=20000\"}", base);
    snprintf(big_src, sizeof big_src, "{\"url\":\"%s/files/b.bin?size=50000000\"}", base);
    snprintf(missing_src, sizeof missing_src, "{\"url\":\"%s/files/missing.bin\"}", base);
    char config[600];
    snprintf(config, sizeof config,
             "{\"baseUrl\":\"%s\",\"pollIntervalMs\":200,\"clientID\":\"test-client\",\"clientSecret\":\"test-secret\"}",
             base);
    test_client_config();
    pan_client *c = pan_client_new(config);
    CHECK(c != NULL);
    if (c) {
        test_create_progress_wait(c);
        test_failed_cancelled_timeout(c);
        test_access_token(c);
        test_image_hosting(c);
    }
    test_callback_parse();
    pan_client_free(c);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
