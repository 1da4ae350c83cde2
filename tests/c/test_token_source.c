/* The token source (pan_client_set_token_source): a host that supplies the client's token. One
 * call of the source for 12 creates from 4 threads; the refused token replaced through
 * PAN_TOKEN_REFUSED; a source's failure and a source that does not answer reported with their
 * own words; a call without a token from inside the source refused, not deadlocked; replies
 * checked; clearing the source. Needs PAN_API_BASE_URL (the emulator, token "test-token").
 * Prints "N passed, N failed". */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static pan_client *client;
static int calls, refused_calls;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Gives "bogus-token" first when asked to (the emulator refuses it), then "test-token". */
static void source(void *user_data, int32_t reason, pan_token_reply *reply) {
    int *bogus_first = user_data;
    pthread_mutex_lock(&lock);
    calls++;
    if (reason == PAN_TOKEN_REFUSED) refused_calls++;
    int bogus = *bogus_first && calls == 1;
    pthread_mutex_unlock(&lock);
    pan_token_reply_set(reply, bogus ? "bogus-token" : "test-token", 0);
}

static void failing(void *user_data, int32_t reason, pan_token_reply *reply) {
    (void)user_data;
    (void)reason;
    pan_token_reply_fail(reply, "the vault is sealed");
}

static void silent(void *user_data, int32_t reason, pan_token_reply *reply) {
    (void)user_data;
    (void)reason;
    (void)reply;
}

static int set_inside_status = -1;
static int never_bogus = 0;

/* Replaces itself from inside (no lock is held that this would wait for), then answers. */
static void replacing(void *user_data, int32_t reason, pan_token_reply *reply) {
    (void)reason;
    set_inside_status = pan_client_set_token_source(user_data, source, &never_bogus);
    pan_token_reply_set(reply, "test-token", 0);
}

static int nested_status = -1, twice_status = -1, null_status = -1, negative_status = -1;
static int long_status = -1;
static char long_token[9000];

/* Calls back into the same client without a token (refused), checks replies, then answers. */
static void reentrant(void *user_data, int32_t reason, pan_token_reply *reply) {
    (void)reason;
    pan_client *c = user_data;
    int64_t id;
    nested_status = pan_client_offline_download(c, NULL, "{\"url\":\"https://example.com/n\"}", &id);
    null_status = pan_token_reply_set(NULL, "x", 0);
    negative_status = pan_token_reply_set(reply, "test-token", -5);
    memset(long_token, 'a', sizeof long_token - 1);
    long_status = pan_token_reply_set(reply, long_token, 0);
    pan_token_reply_set(reply, "test-token", 0);
    twice_status = pan_token_reply_set(reply, "test-token", 0);
}

static void *creator(void *arg) {
    (void)arg;
    int ok = 0;
    for (int i = 0; i < 3; i++) {
        int64_t id = 0;
        ok += pan_client_offline_download(client, NULL, "{\"url\":\"https://example.com/ts.mp4\"}",
                                          &id) == PAN_OK && id > 0;
    }
    return (void *)(intptr_t)ok;
}

static pan_client *new_client(void) {
    char config[512];
    snprintf(config, sizeof config, "{\"baseUrl\":\"%s\"}", getenv("PAN_API_BASE_URL"));
    pan_client *c = pan_client_new(config);
    CHECK(c != NULL);
    return c;
}

int main(void) {
    int64_t id;
    const char *opts = "{\"url\":\"https://example.com/ts.mp4\"}";

    /* 12 creates from 4 threads: one call of the source. */
    client = new_client();
    int bogus_first = 0;
    CHECK(pan_client_set_token_source(client, source, &bogus_first) == PAN_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, creator, NULL);
    int made = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        made += (int)(intptr_t)r;
    }
    CHECK(made == 12);
    CHECK(calls == 1);
    CHECK(refused_calls == 0);
    pan_client_free(client);

    /* The first token is refused: the source is asked again, with PAN_TOKEN_REFUSED. */
    client = new_client();
    calls = 0;
    bogus_first = 1;
    CHECK(pan_client_set_token_source(client, source, &bogus_first) == PAN_OK);
    CHECK(pan_client_offline_download(client, NULL, opts, &id) == PAN_OK);
    CHECK(calls == 2 && refused_calls == 1);
    /* No token, in no message. */
    CHECK(strstr(pan_last_error_message(), "bogus") == NULL);

    /* A failing source: its own words, as PAN_ERR_UNAUTHORIZED. */
    CHECK(pan_client_set_token_source(client, failing, NULL) == PAN_OK);
    CHECK(pan_client_offline_download(client, NULL, opts, &id) == PAN_ERR_UNAUTHORIZED);
    CHECK(strstr(pan_last_error_message(), "the token source gave no token") != NULL);
    CHECK(strstr(pan_last_error_message(), "the vault is sealed") != NULL);

    /* A source that returns without answering. */
    CHECK(pan_client_set_token_source(client, silent, NULL) == PAN_OK);
    CHECK(pan_client_offline_download(client, NULL, opts, &id) == PAN_ERR_UNAUTHORIZED);
    CHECK(strstr(pan_last_error_message(), "without calling pan_token_reply_set") != NULL);

    /* Cleared: back to the credentials, of which this client has none. An explicit token still
     * works. */
    CHECK(pan_client_set_token_source(client, NULL, NULL) == PAN_OK);
    CHECK(pan_client_offline_download(client, NULL, opts, &id) == PAN_ERR_NULL_ARGUMENT);
    CHECK(pan_client_offline_download(client, "test-token", opts, &id) == PAN_OK);
    pan_client_free(client);

    /* Inside the source: a call of the same client without a token is refused at once. */
    client = new_client();
    CHECK(pan_client_set_token_source(client, reentrant, client) == PAN_OK);
    CHECK(pan_client_offline_download(client, NULL, opts, &id) == PAN_OK);
    CHECK(nested_status == PAN_ERR_INVALID_ARGUMENT);
    CHECK(null_status == PAN_ERR_NULL_ARGUMENT);
    CHECK(negative_status == PAN_ERR_INVALID_ARGUMENT);
    CHECK(twice_status == PAN_ERR_INVALID_ARGUMENT);
    CHECK(long_status == PAN_ERR_INVALID_ARGUMENT);
    pan_client_free(client);

    /* A source may set another source of its own client: not a deadlock. */
    client = new_client();
    calls = 0;
    CHECK(pan_client_set_token_source(client, replacing, client) == PAN_OK);
    CHECK(pan_client_offline_download(client, NULL, opts, &id) == PAN_OK);
    CHECK(set_inside_status == PAN_OK);
    /* The token of the replaced source is forgotten: the new source is asked. */
    CHECK(pan_client_offline_download(client, NULL, opts, &id) == PAN_OK);
    CHECK(calls == 1);
    pan_client_free(client);

    /* The process-wide client takes a source too. */
    CHECK(pan_client_set_token_source(NULL, NULL, NULL) == PAN_OK);

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
