/* N create calls per thread through pan-offline against the fixed-response server.
 *
 *   pan_bench THREADS CALLS_PER_THREAD   calls/s (all threads share one client)
 *   pan_bench --first                    one call in a fresh process: main() to task ID
 *   pan_bench --connections N            N calls, each on a new connection (the server closes
 *                                        after each answer): microseconds per call, so the
 *                                        second shows what TLS session resumption saves
 *
 * $PAN_BENCH_CONFIG, when set, is the client's configuration (pan_client_new): the TLS runs
 * give it baseUrl, caFile and resolve. Unset, calls go through pan_offline_download and the
 * process-wide client ($PAN_API_BASE_URL). */
#include "common.h"
#include "pan_offline.h"

static pan_client *client; /* NULL: the process-wide client */

static int one_call(void) {
    int64_t id = 0;
    int32_t rc = client ? pan_client_offline_download(client, BENCH_TOKEN, BENCH_OPTS, &id)
                        : pan_offline_download(BENCH_TOKEN, BENCH_OPTS, &id);
    return rc == PAN_OK && id == BENCH_TASK_ID;
}

static void *worker(void *arg) {
    long *left = arg, n = *left;
    for (long i = 0; i < n; i++) {
        if (one_call()) (*left)--;
        else if (*left == n) fprintf(stderr, "pan: %s\n", pan_last_error_message());
    }
    return NULL;
}

int main(int argc, char **argv) {
    double start = now_s();
    const char *config = getenv("PAN_BENCH_CONFIG");
    /* Only ever the benchmark's own server: without it the default base URL would be the
     * real service. */
    if (!getenv("PAN_API_BASE_URL") || (config && !strstr(config, "\"baseUrl\""))) {
        fprintf(stderr, "set PAN_API_BASE_URL (and PAN_BENCH_CONFIG's baseUrl) to the benchmark's server\n");
        return 2;
    }
    if (config && !(client = pan_client_new(config))) {
        fprintf(stderr, "pan_client_new: %s\n", pan_last_error_message());
        return 1;
    }
    int rc = 2;
    if (argc > 1 && strcmp(argv[1], "--first") == 0) {
        int ok = one_call();
        printf("pan first_call_us=%.0f ok=%d\n", (now_s() - start) * 1e6, ok);
        if (!ok) fprintf(stderr, "pan: %s\n", pan_last_error_message());
        rc = !ok;
    } else if (argc > 2 && strcmp(argv[1], "--connections") == 0) {
        rc = 0;
        printf("pan");
        for (int i = 0; i < atoi(argv[2]); i++) {
            double t0 = now_s();
            if (!one_call()) {
                fprintf(stderr, "pan: %s\n", pan_last_error_message());
                rc = 1;
            }
            printf(" call%d_us=%.0f", i + 1, (now_s() - t0) * 1e6);
        }
        printf("\n");
    } else if (argc > 2) {
        rc = run_threads("pan", atoi(argv[1]), atol(argv[2]), worker);
    }
    pan_client_free(client);
    return rc;
}
