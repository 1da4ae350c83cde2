/*
 * fork() while other threads are in the middle of calls: every child's call must end. A lock
 * the library holds for an instant (its connection pool, its caches) may be held by one of the
 * parent's threads at the moment of the fork; that thread does not exist in the child, so a
 * child that waited for the lock would wait forever. Each child has 10 s (alarm) for one call.
 * A fork lands inside such an instant only now and then, so this is a check that children get
 * through, not a proof (src/fork.rs tests the mechanism itself). Then, made to happen for
 * certain: a fork while one thread is inside the log callback and another waits in
 * pan_client_set_log() for it to return; the child's call must end too. Run by
 * tests/c_abi.rs. Prints "forks=N hung=N failed=N", "log fork: child=..." and "N passed, N
 * failed".
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pan_offline.h"

#define THREADS 4
#define FORKS 300

static char opts[512];
static volatile sig_atomic_t stop = 0;

static void *hammer(void *arg) {
    (void)arg;
    int64_t id;
    /* Paced a little: the emulator is one Python process, and each child must get through. */
    struct timespec pause = {0, 2000000L};
    while (!stop) {
        pan_offline_download("test-token", opts, &id);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/* The log callback: once armed, the first line it gets holds its thread inside until
 * released (pan_client_set_log itself writes a line, on the thread that sets the log). */
static sem_t inside, release;
static atomic_int armed = 0, held = 0;

static void hold_log(void *user_data, int32_t level, const char *message) {
    (void)user_data, (void)level, (void)message;
    if (atomic_load(&armed) && atomic_exchange(&held, 1) == 0) {
        sem_post(&inside);
        sem_wait(&release);
    }
}

/* Forks a child that makes one call within 10 s (alarm); how it ended: "ok", "hung", "failed". */
static const char *fork_one_call(void) {
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        int64_t id = 0;
        _exit(pan_offline_download("test-token", opts, &id) == PAN_OK ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return "failed";
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) return "hung";
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed";
}

static void *call_once(void *arg) {
    (void)arg;
    int64_t id;
    pan_offline_download("test-token", opts, &id);
    return NULL;
}

static void *clear_log(void *arg) {
    (void)arg;
    pan_client_set_log(NULL, 0, NULL, NULL); /* waits for hold_log to return */
    return NULL;
}

/* How a child forked with the log's lock taken on two threads ends: "ok", "hung", "failed". */
static const char *fork_inside_the_log(void) {
    sem_init(&inside, 0, 0);
    sem_init(&release, 0, 0);
    if (pan_client_set_log(NULL, PAN_LOG_DEBUG, hold_log, NULL) != PAN_OK) return "failed";
    atomic_store(&armed, 1);
    pthread_t caller, clearer;
    pthread_create(&caller, NULL, call_once, NULL);
    sem_wait(&inside);
    pthread_create(&clearer, NULL, clear_log, NULL);
    struct timespec settle = {0, 300000000L}; /* the clearer is waiting for the lock by then */
    nanosleep(&settle, NULL);
    const char *verdict = fork_one_call();
    sem_post(&release);
    pthread_join(caller, NULL);
    pthread_join(clearer, NULL);
    sem_destroy(&inside);
    sem_destroy(&release);
    return verdict;
}

int main(void) {
    if (!getenv("PAN_API_BASE_URL")) return 2;
    /* A URL outside the emulator: it only simulates the download (one of its own files would
     * start a real download per task). Nothing ever connects to it. */
    snprintf(opts, sizeof opts, "{\"url\":\"https://example.com/fork.bin\"}");
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, hammer, NULL);
    int hung = 0, failed_children = 0;
    for (int k = 0; k < FORKS; k++) {
        struct timespec pause = {0, (long)(rand() % 2000) * 1000L};
        nanosleep(&pause, NULL);
        const char *verdict = fork_one_call();
        hung += strcmp(verdict, "hung") == 0;
        failed_children += strcmp(verdict, "failed") == 0;
    }
    stop = 1;
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    printf("forks=%d hung=%d failed=%d\n", FORKS, hung, failed_children);
    const char *log_fork = fork_inside_the_log();
    printf("log fork: child=%s\n", log_fork);
    int failed = (hung != 0) + (failed_children != 0) + (strcmp(log_fork, "ok") != 0);
    printf("%d passed, %d failed\n", 3 - failed, failed);
    return failed == 0 ? 0 : 1;
}
