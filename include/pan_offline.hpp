/// @file pan_offline.hpp
/// @brief pan::Client: a header-only C++17 wrapper over pan_offline.h.
///
/// @code
/// pan::Client client(R"({"clientID":"...","clientSecret":"..."})");
/// int64_t task = client.offline_download(R"({"url":"https://example.com/a.mp4"})");
/// int32_t status = client.wait(task, std::chrono::minutes(60),
///                              [](int64_t, double pct, int32_t) { std::printf("%.1f%%\n", pct); return false; });
/// @endcode
///
/// Failures throw pan::Error, which carries the status (PAN_ERR_*), the service's code and the
/// trace ID. The client owns its pan_client and frees it; it is movable, not copyable, and may
/// be shared between threads by reference.
#ifndef PAN_OFFLINE_HPP
#define PAN_OFFLINE_HPP

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pan_offline.h"

/// The C++ wrapper's namespace.
namespace pan {

/// A failed call: what(), status() (a PAN_ERR_* code), api_code() and trace_id().
class Error : public std::runtime_error {
public:
    /// An error as the library reported it.
    /// @param status    a PAN_ERR_* code.
    /// @param message   the library's message (never holds a secret).
    /// @param api_code  the service's `code`, 0 if none.
    /// @param trace_id  the request's x-traceID, empty if none.
    Error(int32_t status, std::string message, int64_t api_code, std::string trace_id)
        : std::runtime_error(std::move(message)), status_(status), api_code_(api_code),
          trace_id_(std::move(trace_id)) {}
    /// @return the PAN_ERR_* code.
    int32_t status() const noexcept { return status_; }
    /// True for PAN_ERR_OUTCOME_UNKNOWN: a create was sent and its answer lost, so the task
    /// may exist; check before creating it again.
    /// @return whether the status is PAN_ERR_OUTCOME_UNKNOWN.
    bool outcome_unknown() const noexcept { return status_ == PAN_ERR_OUTCOME_UNKNOWN; }
    /// @return the service's `code`, 0 if none.
    int64_t api_code() const noexcept { return api_code_; }
    /// @return the request's x-traceID, empty if none.
    const std::string &trace_id() const noexcept { return trace_id_; }

private:
    int32_t status_;
    int64_t api_code_;
    std::string trace_id_;
};

/// Throws the thread's last error when `rc` is not PAN_OK.
/// @param rc  a status code returned by a pan_* function.
inline void check(int32_t rc) {
    if (rc != PAN_OK) throw Error(rc, pan_last_error_message(), pan_last_api_code(), pan_last_trace_id());
}

/// Parsed callback body.
struct Callback {
    bool succeeded;      ///< true when the download succeeded (`status` 0 in the body).
    int64_t file_id;     ///< the file's ID in the drive when it succeeded, else 0.
    std::string reason;  ///< why it failed (`fileReason`), empty when it succeeded.
};

/// Parses the body the service POSTs to `callBackUrl` (pan_callback_parse()).
/// @param body  the request body as received.
/// @return the parsed outcome; throws pan::Error (PAN_ERR_INVALID_JSON, ...) for a bad body.
inline Callback parse_callback(const std::string &body) {
    int32_t status = 0;
    int64_t file_id = 0;
    char reason[4096];
    check(pan_callback_parse(body.c_str(), &status, &file_id, reason, sizeof reason));
    return Callback{status == PAN_CALLBACK_SUCCEEDED, file_id, reason};
}

/// Owns a pan_client. A default-constructed Client uses the defaults (and the environment).
class Client {
public:
    /// A token source (set_token_source()): called with PAN_TOKEN_NEEDED or PAN_TOKEN_REFUSED,
    /// returns {access token, expiry in Unix seconds (0: unknown)}, or throws to say there is
    /// none.
    using TokenSource = std::function<std::pair<std::string, int64_t>(int32_t reason)>;

    /// Makes a client (pan_client_new()); throws pan::Error when the configuration is refused.
    /// @param json_config  a JSON object with the keys of pan_client_new(), or empty for the
    ///                     defaults.
    explicit Client(const std::string &json_config = std::string())
        : ptr_(pan_client_new(json_config.empty() ? nullptr : json_config.c_str())) {
        if (ptr_ == nullptr)
            throw Error(pan_last_error_code(), pan_last_error_message(), 0, std::string());
    }
    /// Frees the client (pan_client_free()).
    ~Client() { pan_client_free(ptr_); }
    /// Takes over `other`'s client and log function; `other` is left empty.
    /// @param other  the client moved from.
    Client(Client &&other) noexcept
        : ptr_(std::exchange(other.ptr_, nullptr)), log_(std::move(other.log_)),
          token_sources_(std::move(other.token_sources_)) {}
    /// Frees this client, then takes over `other`'s.
    /// @param other  the client moved from.
    /// @return this client.
    Client &operator=(Client &&other) noexcept {
        if (this != &other) {
            pan_client_free(ptr_);
            ptr_ = std::exchange(other.ptr_, nullptr);
            log_ = std::move(other.log_);
            token_sources_ = std::move(other.token_sources_);
        }
        return *this;
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    /// Creates a task (pan_client_offline_download()); throws pan::Error on failure.
    /// @param json_opts  the task's options as a JSON object (`url`, `fileName`, `dirID`,
    ///                   `callBackUrl`).
    /// @param token      an access token, or empty for the client's own.
    /// @return the new task's ID.
    int64_t offline_download(const std::string &json_opts, const std::string &token = std::string()) const {
        int64_t id = 0;
        check(pan_client_offline_download(ptr_, tok(token), json_opts.c_str(), &id));
        return id;
    }

    /// One progress query (pan_offline_download_progress()); throws pan::Error on failure.
    /// @param task_id  the task's ID.
    /// @param token    an access token, or empty for the client's own.
    /// @return {percent 0 to 100, PAN_TASK_* status}.
    std::pair<double, int32_t> progress(int64_t task_id, const std::string &token = std::string()) const {
        double pct = 0;
        int32_t status = 0;
        check(pan_offline_download_progress(ptr_, tok(token), task_id, &pct, &status));
        return {pct, status};
    }

    /// Waits for the task to end; returns PAN_TASK_SUCCEEDED or PAN_TASK_FAILED. The callback
    /// returns true to cancel (pan::Error with PAN_ERR_CANCELLED); an exception it throws is
    /// rethrown here. A negative timeout waits without limit.
    /// @param task_id      the task's ID.
    /// @param timeout      the longest wait; negative: no limit (PAN_ERR_TIMEOUT when it runs out).
    /// @param on_progress  called after each poll with (task ID, percent, PAN_TASK_* status);
    ///                     returns true to stop the wait (PAN_ERR_CANCELLED is thrown), false
    ///                     to go on — the rule of every callback of the library, in C (non-zero
    ///                     stops), Python, Go and Node alike; empty: none.
    /// @param token        an access token, or empty for the client's own.
    /// @return PAN_TASK_SUCCEEDED or PAN_TASK_FAILED.
    int32_t wait(int64_t task_id, std::chrono::milliseconds timeout = std::chrono::milliseconds(-1),
                 std::function<bool(int64_t, double, int32_t)> on_progress = nullptr,
                 const std::string &token = std::string()) const {
        struct Ctx {
            std::function<bool(int64_t, double, int32_t)> *fn;
            std::exception_ptr error;
        } ctx{&on_progress, nullptr};
        auto trampoline = [](void *user, int64_t task, double pct, int32_t status) -> int32_t {
            auto *c = static_cast<Ctx *>(user);
            if (!*c->fn) return 0;
            try {
                // The one rule of every callback of this library, in C and every wrapper:
                // true (non-zero) stops, false goes on.
                return (*c->fn)(task, pct, status) ? 1 : 0;
            } catch (...) { // never unwind through C
                c->error = std::current_exception();
                return 1;
            }
        };
        int32_t status = 0;
        int32_t rc = pan_offline_download_wait(ptr_, tok(token), task_id, timeout.count(), trampoline, &ctx, &status);
        if (ctx.error) std::rethrow_exception(ctx.error);
        check(rc);
        return status;
    }

    /// One item of a batch as its callback reported it, in order: `status` PAN_OK with
    /// `task_id`, or a PAN_ERR_* code. (The items a stopped batch did not send are in `json`
    /// only, as PAN_ERR_CANCELLED.)
    struct BatchItem {
        size_t index;     ///< the item's place in the list, from 0.
        int32_t status;   ///< PAN_OK when the task exists, else a PAN_ERR_* code.
        int64_t task_id;  ///< the task's ID, or 0.
    };

    /// The outcome of a batch: each item, and the library's full results list (JSON, with
    /// each failure's message, server code and trace ID; see pan_offline_download_batch()).
    struct BatchResult {
        std::vector<BatchItem> items;  ///< each item as its callback reported it.
        std::string json;              ///< the library's results list (JSON array).
    };

    /// Creates a task for each item of `json_items` (a JSON array of option objects, as
    /// pan_offline_download_batch() takes it), each once, at the client's pace.
    /// `json_batch_opts`: empty, or {"journal":..., "retryUnknown":..., "timeoutMs":...}.
    /// `on_item(index, status, task_id)` returns true to stop the batch, false to go on (it also hears of
    /// each wait for running tasks to end, with PAN_ERR_TASK_LIMIT and task_id PAN_BATCH_WAITING;
    /// the item is reported again
    /// when it settles); an exception it throws stops it too and is rethrown here. Throws
    /// pan::Error only when the batch itself cannot run.
    /// @param json_items       a JSON array of option objects.
    /// @param json_batch_opts  empty, or the batch's options as a JSON object.
    /// @param on_item          called as each item settles; empty: none.
    /// @param token            an access token, or empty for the client's own.
    /// @return each item's outcome and the full results list.
    BatchResult batch(const std::string &json_items, const std::string &json_batch_opts = std::string(),
                      std::function<bool(size_t, int32_t, int64_t)> on_item = nullptr,
                      const std::string &token = std::string()) const {
        struct Ctx {
            std::function<bool(size_t, int32_t, int64_t)> *fn;
            std::vector<BatchItem> items;
            std::exception_ptr error;
        } ctx{&on_item, {}, nullptr};
        auto trampoline = [](void *user, size_t index, int32_t status, int64_t task) -> int32_t {
            auto *c = static_cast<Ctx *>(user);
            // An item that waited (too many running tasks) is reported again when it settles.
            if (!c->items.empty() && c->items.back().index == index)
                c->items.back() = BatchItem{index, status, task};
            else
                c->items.push_back(BatchItem{index, status, task});
            if (!*c->fn) return 0;
            try {
                return (*c->fn)(index, status, task) ? 1 : 0;
            } catch (...) { // never unwind through C
                c->error = std::current_exception();
                return 1;
            }
        };
        char *out = nullptr;
        int32_t rc = pan_offline_download_batch(ptr_, tok(token), json_items.c_str(),
                                                json_batch_opts.empty() ? nullptr : json_batch_opts.c_str(),
                                                trampoline, &ctx, &out);
        std::string json = out ? out : "";
        pan_string_free(out);
        if (ctx.error) std::rethrow_exception(ctx.error);
        check(rc);
        return BatchResult{std::move(ctx.items), std::move(json)};
    }

    /// batch() for a list of URLs (each escaped into its own item).
    /// @param urls             the URLs, one task each.
    /// @param json_batch_opts  empty, or the batch's options as a JSON object.
    /// @param on_item          called as each item settles; empty: none.
    /// @param token            an access token, or empty for the client's own.
    /// @return each item's outcome and the full results list.
    BatchResult batch_urls(const std::vector<std::string> &urls, const std::string &json_batch_opts = std::string(),
                           std::function<bool(size_t, int32_t, int64_t)> on_item = nullptr,
                           const std::string &token = std::string()) const {
        std::string list = "[";
        for (size_t i = 0; i < urls.size(); i++) {
            list += i ? ",{\"url\":\"" : "{\"url\":\"";
            for (unsigned char ch : urls[i]) {
                if (ch == '"' || ch == '\\') {
                    list += '\\';
                    list += static_cast<char>(ch);
                } else if (ch < 0x20) {
                    static const char hex[] = "0123456789abcdef";
                    list += "\\u00";
                    list += hex[ch >> 4];
                    list += hex[ch & 15];
                } else {
                    list += static_cast<char>(ch);
                }
            }
            list += "\"}";
        }
        list += "]";
        return batch(list, json_batch_opts, std::move(on_item), token);
    }

    /// Waits for all the tasks (pan_offline_download_wait_many()); throws pan::Error on failure.
    /// @param task_ids  the tasks' IDs.
    /// @param timeout   the longest wait for all of them; negative: no limit.
    /// @param token     an access token, or empty for the client's own.
    /// @return each task's final PAN_TASK_* status, in the order of `task_ids`.
    std::vector<int32_t> wait_many(const std::vector<int64_t> &task_ids,
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds(-1),
                                   const std::string &token = std::string()) const {
        std::vector<int32_t> statuses(task_ids.size());
        check(pan_offline_download_wait_many(ptr_, tok(token), task_ids.data(), task_ids.size(), timeout.count(),
                                             nullptr, nullptr, statuses.data()));
        return statuses;
    }

    /// Sends the client's log lines (never holding a secret) to `log(level, message)`:
    /// levels PAN_LOG_ERROR to `min_level` (PAN_LOG_DEBUG by default). An empty function turns
    /// the log off. The function must not throw (an exception it throws is dropped) and is
    /// called on the thread that makes a call.
    /// @param log        receives (PAN_LOG_* level, one line of UTF-8); empty: the log is off.
    /// @param min_level  the most detailed level passed on.
    void set_log(std::function<void(int32_t, const std::string &)> log, int32_t min_level = PAN_LOG_DEBUG) {
        if (!log) {
            check(pan_client_set_log(ptr_, 0, nullptr, nullptr));
            log_.reset();
            return;
        }
        auto holder = std::make_unique<std::function<void(int32_t, const std::string &)>>(std::move(log));
        auto trampoline = [](void *user, int32_t level, const char *message) {
            try {
                (*static_cast<std::function<void(int32_t, const std::string &)> *>(user))(level, message);
            } catch (...) { // never unwind through C
            }
        };
        check(pan_client_set_log(ptr_, min_level, trampoline, holder.get()));
        log_ = std::move(holder);
    }

    /// Makes `source` the supplier of the client's access token (pan_client_set_token_source()):
    /// for tokens kept in a vault or handed out by an OAuth broker. It is called when a call
    /// made without a token needs one, with PAN_TOKEN_NEEDED (no token yet, or the last one is
    /// due for renewal) or PAN_TOKEN_REFUSED (the service refused the last one), one thread at
    /// a time (the others wait for its answer and share it), maybe not on the thread that made
    /// the call. An exception it throws fails that call with PAN_ERR_UNAUTHORIZED and a message
    /// "the token source gave no token: " followed by what() (put no secret in it). Inside it,
    /// calls of this client without a token fail with PAN_ERR_INVALID_ARGUMENT, and it must
    /// not set the source again (that waits for the running source). An empty function goes
    /// back to the client's clientID/clientSecret; either way the cached token is forgotten.
    /// Every function set stays alive until the Client is destroyed (one replaced may still
    /// run on another thread). Not to be called by two threads at once.
    /// @param source  the token source; empty: none.
    void set_token_source(TokenSource source) {
        if (!source) {
            check(pan_client_set_token_source(ptr_, nullptr, nullptr));
            return;
        }
        auto holder = std::make_unique<TokenSource>(std::move(source));
        auto trampoline = [](void *user, int32_t reason, pan_token_reply *reply) {
            try { // never unwind through C
                std::pair<std::string, int64_t> answer = (*static_cast<TokenSource *>(user))(reason);
                if (answer.first.find('\0') != std::string::npos) {
                    pan_token_reply_fail(reply, "the token source's token contains a NUL character");
                } else if (pan_token_reply_set(reply, answer.first.c_str(), answer.second) != PAN_OK) {
                    std::string why = "the token source's token was refused: ";
                    why += pan_last_error_message();
                    pan_token_reply_fail(reply, why.c_str());
                }
            } catch (const std::exception &e) {
                pan_token_reply_fail(reply, e.what());
            } catch (...) {
                pan_token_reply_fail(reply, "the token source threw an exception");
            }
        };
        token_sources_.reserve(token_sources_.size() + 1); // nothing can throw once it is set
        check(pan_client_set_token_source(ptr_, trampoline, holder.get()));
        token_sources_.push_back(std::move(holder));
    }

    /// The C handle, for calling the C functions directly; owned by this Client.
    /// @return the client's pan_client pointer.
    const pan_client *get() const noexcept { return ptr_; }

private:
    static const char *tok(const std::string &t) { return t.empty() ? nullptr : t.c_str(); }
    pan_client *ptr_;
    /// The log function, where the library's callback finds it (stable across moves).
    std::unique_ptr<std::function<void(int32_t, const std::string &)>> log_;
    /// Every token source set, where the library's callback finds it: kept until the client is
    /// freed, since one replaced may still be running on another thread.
    std::vector<std::unique_ptr<TokenSource>> token_sources_;
};

} // namespace pan

#endif
