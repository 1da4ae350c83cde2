/* Shared by the two benchmark clients: the request, the expected answer, timing. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_TOKEN "bench-token"
#define BENCH_OPTS "{\"url\":\"https://example.com/bench.mp4\",\"fileName\":\"bench.mp4\",\"dirID\":10023}"
#define BENCH_TASK_ID 394756 /* the documented example answer that the server returns */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long vm_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) v = atol(line + n + 1);
    if (f) fclose(f);
    return v;
}

/* Runs `worker` on `threads` threads of `calls` calls each; prints one result line. */
static int run_threads(const char *name, int threads, long calls, void *(*worker)(void *)) {
    pthread_t th[64];
    long *errors = calloc((size_t)threads, sizeof *errors);
    if (threads < 1 || threads > 64 || !errors) return 2;
    double t0 = now_s();
    for (int t = 0; t < threads; t++) {
        errors[t] = calls;
        pthread_create(&th[t], NULL, worker, &errors[t]);
    }
    long failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        failed += errors[t];
    }
    double secs = now_s() - t0;
    printf("%s threads=%d calls=%ld failed=%ld secs=%.4f calls_per_s=%.0f rss_kib=%ld peak_rss_kib=%ld\n",
           name, threads, calls * threads, failed, secs, (double)(calls * threads) / secs, vm_kib("VmRSS:"),
           vm_kib("VmHWM:"));
    free(errors);
    return failed == 0 ? 0 : 1;
}
#endif
