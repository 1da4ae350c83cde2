/* The floor: what a create costs a client that does no work of its own. The request bytes the
 * library sends (the same fields, byte for byte, and body), made once, written to a kept-alive socket per
 * thread and the answer read until its Content-Length is complete, with the library's
 * liveness check before reusing a connection (recv MSG_PEEK|MSG_DONTWAIT; libcurl polls the
 * socket instead, to the same end). No
 * options to check, no JSON, no HTTP library: what is left is the kernel's loopback and
 * nginx. No client that checks a kept-alive connection before reusing it, as both real ones
 * do, can be faster (without the check it would save one system call a call); it shows how
 * much room a target leaves.
 *
 *   floor_bench THREADS CALLS_PER_THREAD   calls/s, plain HTTP only
 *
 * $PAN_API_BASE_URL must be http://127.0.0.1:PORT (the benchmark's own nginx). */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static char request[1024];
static int request_len;
static struct sockaddr_in server;

/* One answer, read whole: the header block, then Content-Length bytes of body. */
static int read_answer(int fd, char *buf, size_t cap) {
    size_t have = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
        if (n <= 0) return -1;
        have += (size_t)n;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strstr(buf, "Content-Length: ");
        if (end && cl && cl < end && have >= (size_t)(end + 4 - buf) + (size_t)atol(cl + 16)) return 0;
        if (have >= cap - 1) return -1;
    }
}

static void *worker(void *arg) {
    long *left = arg, n = *left;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&server, sizeof server) != 0) return NULL;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[4096], peek;
    for (long i = 0; i < n; i++) {
        if (recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) break; /* closed or stray bytes */
        if (send(fd, request, (size_t)request_len, MSG_NOSIGNAL) != request_len) break;
        if (read_answer(fd, buf, sizeof buf) != 0) break;
        char *id = strstr(buf, "\"taskID\":");
        if (strstr(buf, "\"code\":0") && id && atoll(id + 9) == BENCH_TASK_ID) (*left)--;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    const char *base = getenv("PAN_API_BASE_URL");
    int port = 0;
    /* Only ever the benchmark's own server on loopback. */
    if (!base || sscanf(base, "http://127.0.0.1:%d", &port) != 1 || port <= 0 || port > 65535 || argc < 3) {
        fprintf(stderr, "usage: PAN_API_BASE_URL=http://127.0.0.1:PORT floor_bench THREADS CALLS\n");
        return 2;
    }
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    request_len = snprintf(request, sizeof request,
                           "POST /api/v1/offline/download HTTP/1.1\r\n"
                           "host: 127.0.0.1:%d\r\n"
                           "authorization: Bearer " BENCH_TOKEN "\r\n"
                           "content-length: %zu\r\n"
                           "user-agent: pan-offline/0.1.0\r\n"
                           "platform: open_platform\r\n"
                           "accept-encoding: identity\r\n"
                           "content-type: application/json\r\n"
                           "\r\n" BENCH_OPTS,
                           port, strlen(BENCH_OPTS));
    return run_threads("floor", atoi(argv[1]), atol(argv[2]), worker);
}
