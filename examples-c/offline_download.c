/*
 * offline_download: create a 123pan offline download task from the command line.
 *
 *   PAN_TOKEN=<access token> offline_download URL [--name FILE_NAME] [--dir DIR_ID]
 *                                              [--callback URL]
 *
 * Prints the task ID, or the error with its code, the server's message and trace ID.
 * The base URL is https://open-api.123pan.com unless PAN_API_BASE_URL says otherwise
 * (for example http://127.0.0.1:8080 for the bundled emulator).
 *
 * Build: cc -std=c11 -Iinclude examples-c/offline_download.c -Ltarget/release -lpan_offline
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pan_offline.h"

/* Appends `s` to `out` as a JSON string literal. Returns 0, or -1 when it does not fit. */
static int json_string(char *out, size_t cap, size_t *len, const char *s) {
    static const char hex[] = "0123456789abcdef";
    if (*len + 1 >= cap) return -1;
    out[(*len)++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*len + 7 >= cap) return -1;
        if (*p == '"' || *p == '\\') {
            out[(*len)++] = '\\';
            out[(*len)++] = (char)*p;
        } else if (*p < 0x20) {
            memcpy(out + *len, "\\u00", 4);
            out[*len + 4] = hex[*p >> 4];
            out[*len + 5] = hex[*p & 15];
            *len += 6;
        } else {
            out[(*len)++] = (char)*p;
        }
    }
    if (*len + 2 >= cap) return -1;
    out[(*len)++] = '"';
    out[*len] = '\0';
    return 0;
}

static int append(char *out, size_t cap, size_t *len, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 1 >= cap) return -1;
    memcpy(out + *len, s, n + 1);
    *len += n;
    return 0;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: PAN_TOKEN=<token> %s URL [--name FILE_NAME] [--dir DIR_ID] [--callback URL]\n",
            argv0);
}

/* Prints the last error in full: code, name, message, server code, trace ID. */
static void print_error(const char *what, int32_t rc) {
    fprintf(stderr, "%s failed: error %d (%s)\n  %s\n", what, (int)rc, pan_strerror(rc),
            pan_last_error_message());
    if (pan_last_api_code() != 0)
        fprintf(stderr, "  server code: %lld\n", (long long)pan_last_api_code());
    if (pan_last_trace_id()[0] != '\0')
        fprintf(stderr, "  trace ID: %s\n", pan_last_trace_id());
}

int main(int argc, char **argv) {
    const char *token = getenv("PAN_TOKEN");
    const char *url = NULL, *name = NULL, *dir = NULL, *callback = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--name") == 0 && i + 1 < argc) name = argv[++i];
        else if (strcmp(a, "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(a, "--callback") == 0 && i + 1 < argc) callback = argv[++i];
        else if (a[0] != '-' && url == NULL) url = a;
        else { usage(argv[0]); return 2; }
    }
    if (url == NULL || token == NULL) {
        usage(argv[0]);
        return 2;
    }

    /* The options are the API's own JSON field names. */
    char opts[16384];
    size_t len = 0;
    int bad = append(opts, sizeof opts, &len, "{\"url\":") || json_string(opts, sizeof opts, &len, url);
    if (!bad && name) bad = append(opts, sizeof opts, &len, ",\"fileName\":") || json_string(opts, sizeof opts, &len, name);
    if (!bad && dir) {
        /* dirID is a JSON number: pass the digits through; the library refuses anything else. */
        bad = append(opts, sizeof opts, &len, ",\"dirID\":") || append(opts, sizeof opts, &len, dir);
    }
    if (!bad && callback) bad = append(opts, sizeof opts, &len, ",\"callBackUrl\":") || json_string(opts, sizeof opts, &len, callback);
    if (!bad) bad = append(opts, sizeof opts, &len, "}");
    if (bad) {
        fprintf(stderr, "arguments too long\n");
        return 2;
    }

    int64_t task_id = 0;
    int32_t rc = pan_offline_download(token, opts, &task_id);
    if (rc != PAN_OK) {
        print_error("create offline download task", rc);
        return 1;
    }
    printf("task %lld created (trace ID %s)\n", (long long)task_id, pan_last_trace_id());
    return 0;
}
