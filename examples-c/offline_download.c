/*
 * offline_download: create a 123pan offline download task from the command line, and
 * optionally follow it to the end.
 *
 *   offline_download URL [--name FILE_NAME] [--dir DIR_ID] [--callback URL] [--wait] [--verbose]
 *   offline_download --batch FILE [--dir DIR_ID] [--journal PATH] [--wait] [--verbose]
 *   offline_download --parse-callback BODY
 *   (and with any of the first two: --state DIR | --no-state)
 *
 * Credentials: PAN_TOKEN=<access token>, or PAN_CLIENT_ID and PAN_CLIENT_SECRET (the library
 * then fetches, caches and renews the token itself). The base URL is
 * https://open-api.123pan.com unless PAN_API_BASE_URL says otherwise (for example
 * http://127.0.0.1:8080 for the bundled emulator).
 *
 * State: the access token and the pacing are shared with every other run of the account
 * through a private directory (the library's `sharedState`), so that runs one after another or
 * side by side fetch one token between them (the service keeps only 3 live tokens per client)
 * and keep to one rate. By default $PAN_SHARED_STATE, else $XDG_STATE_HOME/pan-offline, else
 * ~/.local/state/pan-offline; --state DIR (or a redis:// URL) chooses another, --no-state none.
 *
 * Prints the task ID, or the error with its code, the server's message and trace ID. With
 * --wait it shows the progress (a live bar on a terminal, one line per poll otherwise).
 * With --batch it creates a task for each URL of FILE (one per line; blank lines and lines
 * starting with '#' are skipped), each once, at the client's pace; with --journal it can be
 * run again after a crash and creates nothing twice. It shows a live summary on a terminal,
 * one line per event otherwise.
 * --verbose writes the library's log (requests, answers, retries, connections) to stderr.
 * Exit status: 0 created (and, with --wait, succeeded); 3 a download failed; 1 an error;
 * 2 bad usage.
 *
 * Build: cc -std=c11 -Iinclude examples-c/offline_download.c -Ltarget/release -lpan_offline
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

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

/* Prints the last error in full: code, name, message, server code, trace ID. */
static void print_error(const char *what, int32_t rc) {
    fprintf(stderr, "%s failed: error %d (%s)\n  %s\n", what, (int)rc, pan_strerror(rc),
            pan_last_error_message());
    if (pan_last_api_code() != 0)
        fprintf(stderr, "  server code: %lld\n", (long long)pan_last_api_code());
    if (pan_last_trace_id()[0] != '\0')
        fprintf(stderr, "  trace ID: %s\n", pan_last_trace_id());
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s URL [--name FILE_NAME] [--dir DIR_ID] [--callback URL] [--wait] [--verbose]\n"
            "       %s --batch FILE [--dir DIR_ID] [--journal PATH] [--wait] [--verbose]\n"
            "       %s --parse-callback BODY\n"
            "  --state DIR   share the token and pacing through DIR (or redis://HOST:PORT/DB);\n"
            "                default $PAN_SHARED_STATE, else $XDG_STATE_HOME/pan-offline,\n"
            "                else ~/.local/state/pan-offline\n"
            "  --no-state    keep nothing between runs\n"
            "credentials: PAN_TOKEN, or PAN_CLIENT_ID and PAN_CLIENT_SECRET\n",
            argv0, argv0, argv0);
}

/* --verbose: the library's log lines, on stderr. */
static void print_log(void *user_data, int32_t level, const char *message) {
    static const char *names[] = {"", "error", "warn", "info", "debug"};
    (void)user_data;
    fprintf(stderr, "[pan %s] %s\n", level >= 1 && level <= 4 ? names[level] : "?", message);
}

static const char *task_status_name(int32_t status) {
    switch (status) {
    case PAN_TASK_DOWNLOADING: return "downloading";
    case PAN_TASK_FAILED: return "failed";
    case PAN_TASK_SUCCEEDED: return "succeeded";
    case PAN_TASK_RETRYING: return "retrying";
    default: return "unknown";
    }
}

/* Progress callback: a bar redrawn in place on a terminal, one line per poll otherwise. */
static int32_t show_progress(void *user_data, int64_t task_id, double progress, int32_t status) {
    int tty = *(const int *)user_data;
    if (tty) {
        char bar[41];
        int filled = (int)(progress * 40.0 / 100.0);
        for (int i = 0; i < 40; i++) bar[i] = i < filled ? '#' : '.';
        bar[40] = '\0';
        printf("\rtask %lld [%s] %6.2f%% %-11s", (long long)task_id, bar, progress,
               task_status_name(status));
    } else {
        printf("task %lld: %6.2f%% %s\n", (long long)task_id, progress, task_status_name(status));
    }
    fflush(stdout);
    return 0; /* non-zero would cancel the wait */
}

static int parse_callback(const char *body) {
    int32_t status;
    int64_t file_id;
    char reason[512];
    int32_t rc = pan_callback_parse(body, &status, &file_id, reason, sizeof reason);
    if (rc != PAN_OK) {
        print_error("parse callback", rc);
        return 1;
    }
    if (status == PAN_CALLBACK_SUCCEEDED)
        printf("callback: download succeeded, file ID %lld\n", (long long)file_id);
    else
        printf("callback: download failed: %s\n", reason);
    return 0;
}

/* ---- --batch ------------------------------------------------------------------------ */

struct batch_state {
    int tty;
    size_t total, settled, created, failed, unknown;
    size_t waiting; /* the item last reported as waiting, or (size_t)-1 */
    int64_t *task_ids; /* by item; 0 when the item has no task */
    size_t running, succeeded, download_failed;
    size_t waited; /* tasks waited for */
    int32_t *final; /* by waited task: -1 running, else its final status */
    double started;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void batch_summary(const struct batch_state *b) {
    double secs = now_s() - b->started;
    if (b->settled < b->total) { /* creating: the rate of creates and the time left */
        double rate = secs > 0 ? (double)b->settled / secs : 0;
        double left = rate > 0 ? (double)(b->total - b->settled) / rate : 0;
        printf("\r%zu/%zu items: %zu created, %zu failed, %zu unknown | %.1f/s, ~%.0f s left   ",
               b->settled, b->total, b->created, b->failed, b->unknown, rate, left);
    } else { /* waiting */
        printf("\r%zu created, %zu failed, %zu unknown | running %zu, succeeded %zu, failed %zu | "
               "%.0f s   ",
               b->created, b->failed, b->unknown, b->running, b->succeeded, b->download_failed, secs);
    }
    fflush(stdout);
}

static int32_t on_batch_item(void *user_data, size_t index, int32_t status, int64_t task_id) {
    struct batch_state *b = user_data;
    if (task_id == PAN_BATCH_WAITING) {
        /* A notice: the item waits (too many running tasks) and is reported again later. */
        b->waiting = index;
        (void)status;
        if (b->tty) batch_summary(b);
        return 0;
    }
    b->waiting = (size_t)-1;
    b->settled++;
    if (status == PAN_OK) {
        b->created++;
        b->task_ids[index] = task_id;
    } else if (status == PAN_ERR_OUTCOME_UNKNOWN) {
        b->unknown++;
    } else {
        b->failed++;
    }
    if (b->tty) batch_summary(b);
    else if (status == PAN_OK) printf("item %zu: task %lld\n", index, (long long)task_id);
    else if (b->waiting == index) printf("item %zu: waiting: %s\n", index, pan_strerror(status));
    else printf("item %zu: error %d (%s)\n", index, (int)status, pan_strerror(status));
    fflush(stdout);
    return 0;
}

static int32_t on_many_progress(void *user_data, int64_t task_id, double progress, int32_t status) {
    struct batch_state *b = user_data;
    if (status == PAN_TASK_SUCCEEDED || status == PAN_TASK_FAILED) {
        /* Count each task's end once. */
        for (size_t i = 0; i < b->total; i++) {
            if (b->task_ids[i] == task_id && b->final[i] < 0) {
                b->final[i] = status;
                b->running--;
                if (status == PAN_TASK_SUCCEEDED) b->succeeded++;
                else b->download_failed++;
                if (!b->tty)
                    printf("task %lld: %s\n", (long long)task_id, task_status_name(status));
                break;
            }
        }
    } else if (!b->tty) {
        printf("task %lld: %6.2f%% %s\n", (long long)task_id, progress, task_status_name(status));
    }
    if (b->tty) batch_summary(b);
    fflush(stdout);
    return 0;
}

/* Reads FILE into a JSON array of options: one URL per line. Returns a malloc'd string. */
static char *batch_items(const char *path, const char *dir, size_t *count) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return NULL;
    }
    size_t cap = 1024, len = 0;
    char *out = malloc(cap);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    *count = 0;
    if (!out) goto fail;
    out[len++] = '[';
    out[len] = '\0';
    while ((n = getline(&line, &line_cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = '\0';
        char *u = line;
        while (*u == ' ' || *u == '\t') u++;
        if (*u == '\0' || *u == '#') continue;
        size_t need = len + 8 * strlen(u) + (dir ? strlen(dir) : 0) + 64;
        if (need > cap) {
            while (cap < need) cap *= 2;
            char *grown = realloc(out, cap);
            if (!grown) goto fail;
            out = grown;
        }
        if ((*count > 0 && append(out, cap, &len, ",")) || append(out, cap, &len, "{\"url\":") ||
            json_string(out, cap, &len, u) ||
            (dir && (append(out, cap, &len, ",\"dirID\":") || append(out, cap, &len, dir))) ||
            append(out, cap, &len, "}"))
            goto fail;
        (*count)++;
    }
    if (append(out, cap, &len, "]")) goto fail; /* each line left room for it */
    free(line);
    fclose(f);
    return out;
fail:
    fprintf(stderr, "%s: cannot read the list\n", path);
    free(line);
    free(out);
    fclose(f);
    return NULL;
}

static int compare_ids(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int run_batch(pan_client *client, const char *token, const char *path, const char *dir,
                     const char *journal, int wait) {
    size_t count = 0;
    char *items = batch_items(path, dir, &count);
    if (!items) return 1;
    char opts[4096] = "";
    size_t olen = 0;
    if (journal && (append(opts, sizeof opts, &olen, "{\"journal\":") ||
                    json_string(opts, sizeof opts, &olen, journal) || append(opts, sizeof opts, &olen, "}"))) {
        fprintf(stderr, "journal path too long\n");
        free(items);
        return 2;
    }
    struct batch_state b = {0};
    b.tty = isatty(STDOUT_FILENO);
    b.total = count;
    b.waiting = (size_t)-1;
    b.started = now_s();
    b.task_ids = calloc(count ? count : 1, sizeof *b.task_ids);
    b.final = malloc((count ? count : 1) * sizeof *b.final);
    if (!b.task_ids || !b.final) {
        fprintf(stderr, "out of memory\n");
        free(items);
        free(b.task_ids);
        free(b.final);
        return 1;
    }
    char *results = NULL;
    int32_t rc = pan_offline_download_batch(client, token, items, journal ? opts : NULL,
                                            on_batch_item, &b, &results);
    free(items);
    if (b.tty) printf("\n");
    int exit_code = 0;
    if (rc != PAN_OK) {
        print_error("batch", rc);
        exit_code = 1;
    } else {
        pan_string_free(results);
        printf("%zu items: %zu with a task, %zu failed, %zu unknown (check those before rerunning)\n",
               b.total, b.created, b.failed, b.unknown);
        if (b.failed || b.unknown) exit_code = 1;
    }
    if (rc == PAN_OK && wait && b.created > 0) {
        /* Wait for every created task; several items may share one (duplicates). */
        int64_t *ids = malloc(b.created * sizeof *ids);
        int32_t *statuses = malloc(b.created * sizeof *statuses);
        size_t n = 0;
        for (size_t i = 0; i < count && ids && statuses; i++) {
            b.final[i] = b.task_ids[i] ? -1 : 0;
            if (b.task_ids[i]) ids[n++] = b.task_ids[i];
        }
        /* Several items may share a task (duplicates): each task is waited for once. */
        qsort(ids, n, sizeof *ids, compare_ids);
        size_t unique = 0;
        for (size_t i = 0; i < n; i++)
            if (unique == 0 || ids[unique - 1] != ids[i]) ids[unique++] = ids[i];
        n = unique;
        b.running = n;
        b.started = now_s();
        rc = ids && statuses ? pan_offline_download_wait_many(client, token, ids, n, -1, on_many_progress, &b, statuses)
                             : PAN_ERR_NULL_ARGUMENT;
        if (b.tty) printf("\n");
        if (rc != PAN_OK) {
            print_error("wait for the tasks", rc);
            exit_code = 1;
        } else {
            size_t failed = 0;
            for (size_t i = 0; i < n; i++) failed += statuses[i] == PAN_TASK_FAILED;
            printf("%zu tasks: %zu succeeded, %zu failed\n", n, n - failed, failed);
            if (failed && exit_code == 0) exit_code = 3;
        }
        free(ids);
        free(statuses);
    }
    free(b.task_ids);
    free(b.final);
    return exit_code;
}

/* Where runs share their state by default (the XDG Base Directory rules: $XDG_STATE_HOME when
 * it is an absolute path, else ~/.local/state), written into buf; NULL when there is no home. */
static const char *default_state(char *buf, size_t len) {
    const char *env = getenv("PAN_SHARED_STATE");
    if (env != NULL && env[0] != '\0') return env;
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/') n = snprintf(buf, len, "%s/pan-offline", xdg);
    else if (home != NULL && home[0] == '/') n = snprintf(buf, len, "%s/.local/state/pan-offline", home);
    else return NULL;
    return n > 0 && (size_t)n < len ? buf : NULL;
}

int main(int argc, char **argv) {
    const char *token = getenv("PAN_TOKEN");
    const char *client_id = getenv("PAN_CLIENT_ID"), *client_secret = getenv("PAN_CLIENT_SECRET");
    const char *url = NULL, *name = NULL, *dir = NULL, *callback = NULL;
    const char *batch = NULL, *journal = NULL, *state = NULL;
    int wait = 0, verbose = 0, no_state = 0;
    if (argc == 3 && strcmp(argv[1], "--parse-callback") == 0) return parse_callback(argv[2]);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--wait") == 0) wait = 1;
        else if (strcmp(a, "--verbose") == 0) verbose = 1;
        else if (strcmp(a, "--name") == 0 && i + 1 < argc) name = argv[++i];
        else if (strcmp(a, "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(a, "--callback") == 0 && i + 1 < argc) callback = argv[++i];
        else if (strcmp(a, "--batch") == 0 && i + 1 < argc) batch = argv[++i];
        else if (strcmp(a, "--journal") == 0 && i + 1 < argc) journal = argv[++i];
        else if (strcmp(a, "--state") == 0 && i + 1 < argc) state = argv[++i];
        else if (strcmp(a, "--no-state") == 0) no_state = 1;
        else if (a[0] != '-' && url == NULL) url = a;
        else { usage(argv[0]); return 2; }
    }
    if (dir != NULL && (dir[0] == '\0' || strspn(dir, "0123456789") != strlen(dir))) {
        fprintf(stderr, "--dir takes a folder ID: digits only\n");
        return 2;
    }
    /* Leading zeros are not JSON: "0010" is folder 10. */
    while (dir != NULL && dir[0] == '0' && dir[1] != '\0') dir++;
    int have_credentials = client_id != NULL && client_secret != NULL;
    if ((url == NULL) == (batch == NULL) || (token == NULL && !have_credentials) ||
        (journal != NULL && batch == NULL) || (state != NULL && no_state)) {
        usage(argv[0]);
        return 2;
    }

    if (batch) url = "";
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

    /* One client for the whole run: with credentials it keeps the token it fetches, in the
     * state shared with other runs. */
    char state_buf[4096];
    if (state == NULL && !no_state) state = default_state(state_buf, sizeof state_buf);
    if (no_state) state = NULL;
    char config[8192];
    size_t clen = 0;
    int cbad = append(config, sizeof config, &clen, "{");
    const char *sep = "";
    if (!cbad && token == NULL) {
        cbad = append(config, sizeof config, &clen, "\"clientID\":") ||
               json_string(config, sizeof config, &clen, client_id) ||
               append(config, sizeof config, &clen, ",\"clientSecret\":") ||
               json_string(config, sizeof config, &clen, client_secret);
        sep = ",";
    }
    if (!cbad && state != NULL)
        cbad = append(config, sizeof config, &clen, sep) ||
               append(config, sizeof config, &clen, "\"sharedState\":") ||
               json_string(config, sizeof config, &clen, state);
    if (!cbad) cbad = append(config, sizeof config, &clen, "}");
    if (cbad) {
        fprintf(stderr, "credentials or state path too long\n");
        return 2;
    }
    pan_client *client = pan_client_new(config);
    if (client == NULL) {
        print_error("create client", pan_last_error_code());
        if (state != NULL && state == state_buf)
            fprintf(stderr, "  (%s is the default state directory: choose another with "
                            "--state DIR, or none with --no-state)\n", state);
        return 1;
    }
    if (verbose) pan_client_set_log(client, PAN_LOG_DEBUG, print_log, NULL);

    if (batch) {
        int code = run_batch(client, token, batch, dir, journal, wait);
        pan_client_free(client);
        return code;
    }
    int exit_code = 0;
    int64_t task_id = 0;
    int32_t rc = pan_client_offline_download(client, token, opts, &task_id);
    if (rc != PAN_OK) {
        print_error("create offline download task", rc);
        if (rc == PAN_ERR_OUTCOME_UNKNOWN)
            fprintf(stderr, "  the task may exist: check the drive before running this again\n");
        exit_code = 1;
    } else {
        printf("task %lld created (trace ID %s)\n", (long long)task_id, pan_last_trace_id());
        fflush(stdout);
    }
    if (rc == PAN_OK && wait) {
        int tty = isatty(STDOUT_FILENO);
        int32_t status = 0;
        rc = pan_offline_download_wait(client, token, task_id, -1, show_progress, &tty, &status);
        if (tty) printf("\n");
        if (rc != PAN_OK) {
            print_error("wait for the task", rc);
            exit_code = 1;
        } else if (status == PAN_TASK_SUCCEEDED) {
            printf("task %lld succeeded\n", (long long)task_id);
        } else {
            printf("task %lld failed (the callback, if one was set, carries the reason)\n",
                   (long long)task_id);
            exit_code = 3;
        }
    }
    pan_client_free(client);
    return exit_code;
}
