/* N create calls per thread through pan_offline_download (PAN_API_BASE_URL points at the
 * fixed-response server). Usage: pan_bench THREADS CALLS_PER_THREAD [--first] */
#include "common.h"
#include "pan_offline.h"

static void *worker(void *arg) {
    long *left = arg, n = *left;
    for (long i = 0; i < n; i++) {
        int64_t id = 0;
        if (pan_offline_download(BENCH_TOKEN, BENCH_OPTS, &id) == PAN_OK && id == BENCH_TASK_ID) (*left)--;
        else if (*left == n) fprintf(stderr, "pan: %s\n", pan_last_error_message());
    }
    return NULL;
}

int main(int argc, char **argv) {
    double start = now_s();
    if (argc > 1 && strcmp(argv[1], "--first") == 0) {
        int64_t id = 0;
        int32_t rc = pan_offline_download(BENCH_TOKEN, BENCH_OPTS, &id);
        printf("pan first_call_us=%.0f ok=%d\n", (now_s() - start) * 1e6, rc == PAN_OK && id == BENCH_TASK_ID);
        return rc == PAN_OK ? 0 : 1;
    }
    if (argc < 3) return 2;
    return run_threads("pan", atoi(argv[1]), atol(argv[2]), worker);
}
