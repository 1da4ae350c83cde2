//! The C ABI of bulk work: batches of creates (with a journal) and waits for many tasks.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use super::{
    c_string, client_arg, guard, opt_str_arg, out_arg, str_arg, token_arg, PanClient,
    PanProgressCallback,
};
use crate::error::{Error, Status};
use crate::{BatchOptions, Progress};

/// `task_id` of a batch callback's wait notice (`PanBatchCallback`): the item is not settled,
/// it waits and will be reported again. No settled item has this task ID.
pub const PAN_BATCH_WAITING: i64 = -1;

/// Called by `pan_offline_download_batch()` on the calling thread: once per item as it
/// settles (in the items' order), and also each time an item starts waiting because the
/// service said too many tasks are running (`status` `PAN_ERR_TASK_LIMIT`) or too many calls
/// came (`PAN_ERR_RATE_LIMITED`), with `task_id` `PAN_BATCH_WAITING` (-1) — a notice, not an
/// outcome: the item is not settled then, and will be reported again (an item that finally
/// fails for the same reason is reported with `task_id` 0). Returning non-zero stops the
/// batch there too.
///
/// @param user_data  the pointer given to `pan_offline_download_batch()`, passed through.
/// @param index      the item's place in the list, from 0.
/// @param status     `PAN_OK` when the task exists (`task_id` is its ID), else the item's
///                   `PAN_ERR_*` code (its message is in the results list).
/// @param task_id    the task's ID; 0 for an item settled without a task;
///                   `PAN_BATCH_WAITING` for a wait notice.
/// @return 0 to go on; any other value stops the batch: the items not yet settled are
///         reported `PAN_ERR_CANCELLED`, unsent, and this callback is not called for them.
pub type PanBatchCallback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, index: usize, status: i32, task_id: i64) -> i32,
>;

/// Create many offline download tasks (a batch), each once, at the client's pace.
///
/// Every item is validated first; invalid items are reported, not sent, and the others go
/// on. Items identical after normalisation (the same request body) are created once: the
/// later ones are reported with the same outcome and `"duplicateOf"`. Creates take turns at
/// the client's `createQps`. When the service answers that too many of the account's tasks
/// are running (`PAN_ERR_TASK_LIMIT`) while tasks of this batch run, the batch learns the
/// cap (how many of its tasks ran) and from then on sends the next item as soon as one of its
/// tasks is seen ended (polled at `progressQps`, every `pollIntervalMs`); when none of its own
/// run, or the service says to slow down, the item waits (5 s, doubling to 60 s) and is tried
/// again, within the batch's `timeoutMs` (or 10 minutes per item without one); `on_item`
/// hears of each wait and may stop the batch.
///
/// With a journal, the batch appends one JSON line per event and makes it durable (fsync)
/// before going on: an item about to be sent, then its outcome. Run again with the same
/// journal (and items, in any order), items already created are reported from the journal
/// (`"fromJournal": true`) and not sent again; an item sent without a recorded outcome is
/// `PAN_ERR_OUTCOME_UNKNOWN` and is not sent again unless `"retryUnknown": true`; items
/// that certainly were not created are sent. A torn last line (a crash mid-write) is
/// tolerated; a file that is not a journal is refused by name. Journals carry a `version`:
/// those of this version are readable by every later one.
///
/// @param client            a client, or NULL for the process-wide default one.
/// @param token             the access token, or NULL for the client's own.
/// @param json_items        a JSON array (at most 64 MiB, 100,000 items) of option objects,
///                          each what `pan_offline_download()` takes.
/// @param json_batch_opts   NULL for the defaults, or a JSON object: `journal` (a file path),
///                          `retryUnknown` (boolean, default false), `timeoutMs` (integer:
///                          the whole batch's limit; items not sent by then are
///                          `PAN_ERR_TIMEOUT`, unsent).
/// @param on_item           called once per item as it settles; may be NULL.
/// @param user_data         passed to `on_item` unchanged; may be NULL.
/// @param results_json_out  receives a JSON array in input order, one object per item:
///                          `index`, `status` (a `PAN_*` code), and `taskID` when the task
///                          exists, or `error` (the message), `apiCode` and `traceID`; plus
///                          `duplicateOf` and `fromJournal` where they apply. Owned by the
///                          caller: free it with `pan_string_free()`. Written only on success.
/// @return `PAN_OK` when every item settled (each item's own outcome is in the results);
///         an error code only when the batch itself could not run: NULL or invalid
///         arguments, items that are not a JSON array, bad options, a journal that cannot be
///         read or written (`PAN_ERR_INVALID_ARGUMENT`, naming the file). A journal that
///         cannot be written during the batch (a full disk) stops it there with that status:
///         every item settled until then, the one being sent included, was passed to
///         `on_item`, the rest were not sent, and items already sent stay recorded as sent.
///         A new journal is created 0600 (it holds the source URLs), never through a
///         symbolic link, and its directory is synced.
///
/// # Safety
/// `client` is NULL or live; the strings are NULL or NUL-terminated; `on_item` is NULL or a
/// valid function; `results_json_out` is NULL or points to a `char *`.
#[no_mangle]
pub unsafe extern "C" fn pan_offline_download_batch(
    client: *const PanClient,
    token: *const c_char,
    json_items: *const c_char,
    json_batch_opts: *const c_char,
    on_item: PanBatchCallback,
    user_data: *mut c_void,
    results_json_out: *mut *mut c_char,
) -> i32 {
    guard(|| {
        out_arg(results_json_out, "results_json_out")?;
        // SAFETY: the caller's pointers, as documented.
        let token = unsafe { token_arg(token) }?;
        // SAFETY: as above.
        let items = unsafe { str_arg(json_items, "json_items") }?;
        // SAFETY: as above.
        let opts =
            BatchOptions::from_json(unsafe { opt_str_arg(json_batch_opts, "json_batch_opts") }?)?;
        // SAFETY: as above.
        let client = unsafe { client_arg(client) }?;
        let mut report = |r: &crate::ItemResult| match on_item {
            Some(f) => {
                // SAFETY: the caller promises a valid function; user_data is theirs.
                let task_id = match r.task_id {
                    Some(id) => id,
                    None if r.waiting => PAN_BATCH_WAITING,
                    None => 0,
                };
                // SAFETY: as above.
                let stop = unsafe { f(user_data, r.index, r.status.code(), task_id) };
                stop == 0
            }
            None => true,
        };
        let results = client.offline_download_batch(token.as_ref(), items, &opts, &mut report)?;
        let json = serde_json::Value::Array(results.iter().map(|r| r.to_json()).collect());
        let owned = c_string(&json.to_string()).into_raw();
        // SAFETY: checked non-NULL above.
        unsafe { *results_json_out = owned };
        Ok(())
    })
}

/// Wait for many tasks to end, polling the unfinished ones in turn at the client's
/// `progressQps` (and every `pollIntervalMs` at most, a round).
///
/// @param client        a client, or NULL for the process-wide default one.
/// @param token         the access token, or NULL for the client's own.
/// @param task_ids      `count` task IDs (positive), from create calls.
/// @param count         how many; 0 returns `PAN_OK` at once.
/// @param timeout_ms    how long to wait at most, in milliseconds; negative waits without
///                      limit; 0 polls each once.
/// @param on_progress   called after each poll with the polled task's ID; may be NULL. A
///                      non-zero return stops the wait with `PAN_ERR_CANCELLED`.
/// @param user_data     passed to `on_progress` unchanged; may be NULL.
/// @param statuses_out  `count` `int32_t`s: receives each task's final status
///                      (`PAN_TASK_SUCCEEDED` or `PAN_TASK_FAILED`) in the order of
///                      `task_ids`. Written only on success.
/// @return `PAN_OK` when all have ended (failed downloads included); `PAN_ERR_TIMEOUT`;
///         `PAN_ERR_CANCELLED`; or the error of a poll.
///
/// # Safety
/// `task_ids` and `statuses_out` are NULL (with `count` 0) or point to `count` elements;
/// the other pointers as for `pan_offline_download_wait()`.
#[no_mangle]
pub unsafe extern "C" fn pan_offline_download_wait_many(
    client: *const PanClient,
    token: *const c_char,
    task_ids: *const i64,
    count: usize,
    timeout_ms: i64,
    on_progress: PanProgressCallback,
    user_data: *mut c_void,
    statuses_out: *mut i32,
) -> i32 {
    guard(|| {
        if count == 0 {
            return Ok(());
        }
        if task_ids.is_null() {
            return Err(Error::new(Status::NullArgument, "`task_ids` is NULL"));
        }
        out_arg(statuses_out, "statuses_out")?;
        if count > crate::MAX_BATCH_ITEMS {
            return Err(Error::invalid(format!(
                "`count` is {count}, more than the limit of {}",
                crate::MAX_BATCH_ITEMS
            )));
        }
        // SAFETY: the caller promises `count` readable elements.
        let ids = unsafe { std::slice::from_raw_parts(task_ids, count) }.to_vec();
        // SAFETY: the caller's pointers, as documented.
        let token = unsafe { token_arg(token) }?;
        // SAFETY: as above.
        let client = unsafe { client_arg(client) }?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        let mut report = |id: i64, p: &Progress| match on_progress {
            Some(f) => {
                // SAFETY: the caller promises a valid function; user_data is theirs.
                let stop = unsafe { f(user_data, id, p.process, p.status_code()) };
                stop == 0
            }
            None => true,
        };
        let statuses = client.wait_many(token.as_ref(), &ids, timeout, &mut report)?;
        // SAFETY: checked non-NULL; the caller promises `count` writable elements.
        let out = unsafe { std::slice::from_raw_parts_mut(statuses_out, count) };
        for (o, s) in out.iter_mut().zip(statuses) {
            *o = s as i32;
        }
        Ok(())
    })
}
