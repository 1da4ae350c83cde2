/* The same requests through libcurl's easy interface, as a C programmer would write them:
 * one reused handle per thread (keep-alive), the same headers and body, the taskID read out
 * of the answer. Usage as pan_bench's: THREADS CALLS_PER_THREAD | --first | --connections N.
 * For TLS, $BENCH_CA_FILE is the CA (CURLOPT_CAINFO) and $BENCH_RESOLVE maps the host name
 * to loopback (CURLOPT_RESOLVE, HOST:PORT:ADDRESS), as pan_bench's caFile and resolve do. */
#include "common.h"

#include <curl/curl.h>

struct buf {
    char data[4096];
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *user) {
    struct buf *b = user;
    size_t len = size * n;
    if (b->len + len >= sizeof b->data) return 0; /* a cap, like the library's */
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

/* Reads data.taskID the way a careful hand-written C client would: find the key, parse the
 * number, check the envelope's code. (Simpler than a JSON parser, so if anything this
 * flatters libcurl.) */
static long long task_id(const char *body) {
    if (!strstr(body, "\"code\":0")) return -1;
    const char *p = strstr(body, "\"taskID\":");
    return p ? strtoll(p + 9, NULL, 10) : -1;
}

static const char *url(void) {
    static char u[512];
    const char *base = getenv("PAN_API_BASE_URL"); /* checked in main */
    snprintf(u, sizeof u, "%s/api/v1/offline/download", base ? base : "");
    return u;
}

static CURL *make_handle(struct buf *b, struct curl_slist **headers) {
    CURL *h = curl_easy_init();
    *headers = curl_slist_append(NULL, "Authorization: Bearer " BENCH_TOKEN);
    *headers = curl_slist_append(*headers, "Platform: open_platform");
    *headers = curl_slist_append(*headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, BENCH_OPTS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "curl-bench");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (getenv("BENCH_CA_FILE")) {
        curl_easy_setopt(h, CURLOPT_CAINFO, getenv("BENCH_CA_FILE"));
        /* The suite rustls picks first (its provider offers AES-GCM only): like for like. */
        curl_easy_setopt(h, CURLOPT_TLS13_CIPHERS, "TLS_AES_128_GCM_SHA256");
    }
    if (getenv("BENCH_RESOLVE")) {
        static struct curl_slist *resolve; /* set before any thread starts, never freed */
        if (!resolve) resolve = curl_slist_append(NULL, getenv("BENCH_RESOLVE"));
        curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
    }
    return h;
}

static int one_call(CURL *h, struct buf *b) {
    long status = 0;
    b->len = 0;
    if (curl_easy_perform(h) != CURLE_OK) return 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status == 200 && task_id(b->data) == BENCH_TASK_ID;
}

static void *worker(void *arg) {
    long *left = arg, n = *left;
    struct buf b;
    struct curl_slist *headers;
    CURL *h = make_handle(&b, &headers);
    for (long i = 0; i < n; i++)
        if (one_call(h, &b)) (*left)--;
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    return NULL;
}

int main(int argc, char **argv) {
    double start = now_s();
    if (!getenv("PAN_API_BASE_URL")) {
        fprintf(stderr, "set PAN_API_BASE_URL to the benchmark's server\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (argc > 1 && strcmp(argv[1], "--first") == 0) {
        struct buf b;
        struct curl_slist *headers;
        CURL *h = make_handle(&b, &headers);
        int ok = one_call(h, &b);
        printf("curl first_call_us=%.0f ok=%d\n", (now_s() - start) * 1e6, ok);
        return ok ? 0 : 1;
    }
    if (argc > 2 && strcmp(argv[1], "--connections") == 0) {
        struct buf b;
        struct curl_slist *headers;
        CURL *h = make_handle(&b, &headers);
        int rc = 0;
        printf("curl");
        for (int i = 0; i < atoi(argv[2]); i++) {
            double t0 = now_s();
            if (!one_call(h, &b)) rc = 1;
            printf(" call%d_us=%.0f", i + 1, (now_s() - t0) * 1e6);
        }
        printf("\n");
        curl_easy_cleanup(h);
        curl_slist_free_all(headers);
        return rc;
    }
    if (argc < 3) return 2;
    return run_threads("curl", atoi(argv[1]), atol(argv[2]), worker);
}
