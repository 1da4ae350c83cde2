/*
 * fork(): a child calls the library and gets a connection of its own; the parent goes on
 * working after it. Run by tests/c_abi.rs, which checks at the emulator that the child's
 * request arrived on another connection than the parent's (a reused pooled connection would
 * interleave the two processes' bytes, and over TLS break both sessions).
 * Prints "parent-1 <id>", "child <id>", "parent-2 <id>" and "N passed, N failed".
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pan_offline.h"

int main(void) {
    const char *base = getenv("PAN_API_BASE_URL");
    if (!base) return 2;
    char opts[512];
    snprintf(opts, sizeof opts, "{\"url\":\"%s/files/fork.bin?size=10\"}", base);
    int passed = 0, failed = 0;
    int64_t id = 0;

    /* The parent's first call leaves a kept-alive connection in the default client's pool. */
    if (pan_offline_download("test-token", opts, &id) == PAN_OK) passed++; else failed++;
    printf("parent-1 %lld\n", (long long)id);
    fflush(stdout);

    pid_t pid = fork();
    if (pid == 0) {
        int64_t child_id = 0;
        int32_t rc = pan_offline_download("test-token", opts, &child_id);
        printf("child %lld\n", (long long)child_id);
        fflush(stdout);
        _exit(rc == PAN_OK ? 0 : 1);
    }
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) passed++;
    else failed++;

    if (pan_offline_download("test-token", opts, &id) == PAN_OK) passed++; else failed++;
    printf("parent-2 %lld\n", (long long)id);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
