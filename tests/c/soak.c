/*
 * Soak: N create calls (default 100000) through the process-wide client against the server
 * at PAN_API_BASE_URL, printing the resident set size along the way. Run by .ci/c-checks.sh;
 * fails when RSS grows by more than 4 MiB between the 10 000th call and the last.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "pan_offline.h"

static long rss_kib(void) {
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = -1;
    fclose(f);
    return pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    const char *opts = "{\"url\":\"https://example.com/soak.mp4\",\"dirID\":10023}";
    long failures = 0, at_10k = -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 1; i <= n; i++) {
        int64_t id;
        if (pan_offline_download("test-token", opts, &id) != PAN_OK) {
            if (failures++ < 5) fprintf(stderr, "call %ld: %s\n", i, pan_last_error_message());
        }
        if (i == 10000 || (n < 10000 && i == n / 10)) at_10k = rss_kib();
        if (i == 1 || i % 10000 == 0 || i == n) printf("calls %7ld  rss %6ld KiB\n", i, rss_kib());
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long growth = rss_kib() - at_10k;
    printf("%ld calls in %.1f s (%.0f calls/s), %ld failed; RSS growth after the first 10%%: %ld KiB\n",
           n, secs, (double)n / secs, failures, growth);
    int ok = failures == 0 && growth <= 4096;
    printf("%d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}
