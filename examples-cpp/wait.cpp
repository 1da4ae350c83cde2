// The C++ wrapper in use: create a task with the client's own token, follow it, handle errors.
// Usage: PAN_CLIENT_ID=... PAN_CLIENT_SECRET=... wait URL
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "pan_offline.hpp"

int main(int argc, char **argv) {
    const char *id = std::getenv("PAN_CLIENT_ID"), *secret = std::getenv("PAN_CLIENT_SECRET");
    if (argc < 2 || !id || !secret) {
        std::fprintf(stderr, "usage: PAN_CLIENT_ID=... PAN_CLIENT_SECRET=... %s URL\n", argv[0]);
        return 2;
    }
    try {
        pan::Client client(std::string(R"({"pollIntervalMs":200,"clientID":")") + id +
                           R"(","clientSecret":")" + secret + R"("})");
        size_t log_lines = 0;
        client.set_log([&log_lines](int32_t, const std::string &) { log_lines++; }, PAN_LOG_INFO);
        int64_t task = client.offline_download(std::string(R"({"url":")") + argv[1] + R"("})");
        client.set_log(nullptr);
        std::printf("log lines: %zu\n", log_lines);
        std::printf("task %lld created\n", static_cast<long long>(task));
        int32_t status = client.wait(task, std::chrono::seconds(60), [](int64_t, double pct, int32_t) {
            std::printf("%6.2f%%\n", pct);
            return false; // go on (true would stop the wait)
        });
        std::printf("task %s\n", status == PAN_TASK_SUCCEEDED ? "succeeded" : "failed");
        // The one rule of the library's callbacks: true stops.
        try {
            client.wait(task, std::chrono::seconds(60), [](int64_t, double, int32_t) { return true; });
        } catch (const pan::Error &e) {
            if (e.status() == PAN_ERR_CANCELLED) std::printf("stopped by its callback as asked\n");
        }
        try {
            client.offline_download(R"({"url":"ftp://example.com/x"})");
        } catch (const pan::Error &e) {
            std::printf("refused as expected: status %d: %s\n", e.status(), e.what());
        }
        // A batch: each item once, one refused by name; then wait for the created ones.
        auto result = client.batch_urls({std::string(argv[1]) + "#b1", "ftp://example.com/x"});
        std::vector<int64_t> created;
        for (const auto &item : result.items) {
            std::printf("batch item %zu: status %d, task %lld\n", item.index, item.status,
                        static_cast<long long>(item.task_id));
            if (item.status == PAN_OK) created.push_back(item.task_id);
        }
        auto finals = client.wait_many(created, std::chrono::seconds(60));
        std::printf("batch: %zu created, %zu finished\n", created.size(), finals.size());
        return status == PAN_TASK_SUCCEEDED ? 0 : 3;
    } catch (const pan::Error &e) {
        if (e.outcome_unknown())
            std::fprintf(stderr, "the task may have been created: check before retrying\n");
        std::fprintf(stderr, "error %d (server code %lld, trace ID %s): %s\n", e.status(),
                     static_cast<long long>(e.api_code()), e.trace_id().c_str(), e.what());
        return 1;
    }
}
