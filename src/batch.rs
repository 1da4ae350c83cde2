//! Batches and waits for many tasks: what people do with offline download is rarely one URL.
//!
//! A batch validates every item first, creates each distinct one once at the client's pace,
//! waits and tries again while the account has too many tasks running, and — with a journal
//! — records each send and its outcome durably, so that a batch that dies at any point can be
//! run again and creates nothing twice (see `journal.rs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::client::Client;
use crate::error::{Error, Result, Status};
use crate::journal::{Journal, Known};
use crate::json::{parse_object, type_name};
use crate::offline::{Progress, TaskStatus};
use crate::options::{OfflineDownload, Target, MAX_OPTIONS_LEN};
use crate::token::Token;

/// Largest list of items accepted, in bytes.
pub const MAX_BATCH_LEN: usize = 64 * 1024 * 1024;
/// Most items in one batch.
pub const MAX_BATCH_ITEMS: usize = 100_000;
/// The first wait after the service said too many tasks are running (peers wait 5 to 60 s).
const TASK_LIMIT_FIRST_WAIT: Duration = Duration::from_secs(5);
/// The longest of those waits.
const TASK_LIMIT_MAX_WAIT: Duration = Duration::from_secs(60);
/// Creates answered code 1 in a row after which a batch stops sending (an account penalty).
const PENALTY_AFTER: usize = 3;
/// How long one item waits for running tasks to end, in all, when the batch has no time
/// limit of its own.
const TASK_LIMIT_PATIENCE: Duration = Duration::from_secs(600);

/// How a batch runs: `{"journal": "<path>", "retryUnknown": false, "timeoutMs": <ms>}`, every
/// key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOptions {
    /// The journal file (created when missing): each send and its outcome, made durable.
    pub journal: Option<PathBuf>,
    /// Send again the items the journal records as sent without an outcome (they may exist).
    pub retry_unknown: bool,
    /// The time limit of the whole batch; items not sent by then are reported as time-outs.
    pub timeout: Option<Duration>,
}

impl BatchOptions {
    /// Reads the options (`None`: the defaults). Unknown or mistyped keys are refused by name.
    pub fn from_json(text: Option<&str>) -> Result<BatchOptions> {
        let mut o = BatchOptions::default();
        let Some(text) = text else {
            return Ok(o);
        };
        for (key, value) in parse_object(text, "batch options", MAX_OPTIONS_LEN)?.0 {
            let wrong = |want: &str| {
                Error::invalid(format!(
                    "batch options: `{key}` must be {want}, not {}",
                    type_name(&value)
                ))
            };
            match &*key {
                "journal" => match &value {
                    Value::String(s) if !s.is_empty() => o.journal = Some(PathBuf::from(s)),
                    _ => return Err(wrong("a non-empty path")),
                },
                "retryUnknown" => {
                    o.retry_unknown = value.as_bool().ok_or_else(|| wrong("true or false"))?
                }
                "timeoutMs" => {
                    let ms = value
                        .as_u64()
                        .filter(|ms| (1..=86_400_000 * 30).contains(ms))
                        .ok_or_else(|| wrong("an integer from 1 to 2592000000"))?;
                    o.timeout = Some(Duration::from_millis(ms));
                }
                other => {
                    return Err(Error::invalid(format!(
                        "batch options: unknown key `{}` (the keys are journal, retryUnknown, \
                         timeoutMs; names are case-sensitive)",
                        crate::redact::printable(other, 64)
                    )))
                }
            }
        }
        Ok(o)
    }
}

/// What became of one item of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResult {
    /// The item's place in the list, from 0.
    pub index: usize,
    /// `Ok` when the task exists (created now, earlier in the list, or in an earlier run).
    pub status: Status,
    /// The task's ID, when it exists.
    pub task_id: Option<i64>,
    /// Why not, when it does not (or may not).
    pub error: Option<String>,
    /// The service's `code` of the failure, else 0.
    pub api_code: i64,
    /// The failure's trace ID, else `""`.
    pub trace_id: String,
    /// The index of the earlier, identical item this one is a duplicate of.
    pub duplicate_of: Option<usize>,
    /// Whether the outcome came from the journal (nothing was sent for it in this run).
    pub from_journal: bool,
    /// A wait notice, not an outcome: the item waits (too many running tasks, or calls) and
    /// will be reported again when it settles. Only the callback sees these.
    pub waiting: bool,
}

impl ItemResult {
    fn new(index: usize) -> ItemResult {
        ItemResult {
            index,
            status: Status::Ok,
            task_id: None,
            error: None,
            api_code: 0,
            trace_id: String::new(),
            duplicate_of: None,
            from_journal: false,
            waiting: false,
        }
    }

    /// A wait notice of the item, for this reason.
    fn waiting(index: usize, e: &Error) -> ItemResult {
        ItemResult {
            waiting: true,
            ..ItemResult::failed(index, e)
        }
    }

    fn failed(index: usize, e: &Error) -> ItemResult {
        ItemResult {
            status: e.status(),
            error: Some(e.message().to_owned()),
            api_code: e.api_code(),
            trace_id: e.trace_id().to_owned(),
            ..ItemResult::new(index)
        }
    }

    /// The item as the C ABI's results list writes it.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"index": self.index, "status": self.status.code()});
        if let Some(id) = self.task_id {
            v["taskID"] = json!(id);
        }
        if let Some(e) = &self.error {
            v["error"] = json!(e);
            v["apiCode"] = json!(self.api_code);
            v["traceID"] = json!(self.trace_id);
        }
        if let Some(d) = self.duplicate_of {
            v["duplicateOf"] = json!(d);
        }
        if self.from_journal {
            v["fromJournal"] = json!(true);
        }
        v
    }
}

impl Client {
    /// Creates a task for each item of `items` (a JSON array of option objects, each what
    /// [`OfflineDownload::from_json`] takes), at the client's pace. See the header's
    /// `pan_offline_download_batch()` for the whole contract. `on_item` is called once per
    /// item as it settles, in order; `false` stops the batch (the rest are `Cancelled`,
    /// unsent). Fails as a whole only when the batch cannot run (bad items list or options,
    /// a journal that cannot be read or written).
    pub fn offline_download_batch(
        &self,
        token: Option<&Token>,
        items: &str,
        opts: &BatchOptions,
        on_item: &mut dyn FnMut(&ItemResult) -> bool,
    ) -> Result<Vec<ItemResult>> {
        let items = parse_items(items)?;
        if token.is_none() && self.credentials().is_none() {
            return Err(Error::new(
                Status::NullArgument,
                "`token` is NULL and the client has no `clientID`/`clientSecret` to fetch one",
            ));
        }
        let end = opts.timeout.map(|t| Instant::now() + t);
        let mut journal = opts.journal.as_deref().map(Journal::open).transpose()?;
        let mut first_of: HashMap<String, usize> = HashMap::new();
        let mut results: Vec<ItemResult> = Vec::with_capacity(items.len());
        // Why the rest are not sent, once the batch stops: the callback said so, the journal
        // cannot be written, or the token is refused (every item would be).
        let mut stopped: Option<Error> = None;
        let mut running = Running::default();
        let mut code_1_in_a_row = 0;
        for (index, raw) in items.iter().enumerate() {
            if let Some(why) = &stopped {
                results.push(ItemResult::failed(index, why));
                continue;
            }
            let settled = self.settle(
                index,
                raw.get(),
                token,
                opts,
                end,
                &mut journal,
                &mut first_of,
                &results,
                &mut running,
                &mut *on_item,
            );
            let (result, stop) = match settled {
                // Stopped by the callback while the item waited.
                Ok(result) if result.status == Status::Cancelled => {
                    let why = Error::new(
                        Status::Cancelled,
                        "not sent: the batch was stopped by its callback",
                    );
                    (result, Some(why))
                }
                Ok(result) => {
                    // Code 1 on creates again and again: an account-level penalty (seen after
                    // bursts), not bad luck; sending the rest would only prolong it.
                    let sent_now = result.duplicate_of.is_none() && !result.from_journal;
                    if sent_now && result.status == Status::Api && result.api_code == 1 {
                        code_1_in_a_row += 1;
                    } else if sent_now && result.task_id.is_some() {
                        code_1_in_a_row = 0;
                    }
                    let refused =
                        matches!(result.status, Status::Unauthorized | Status::TokenLimit);
                    let penalty = (code_1_in_a_row >= PENALTY_AFTER).then(|| {
                        Error::new(
                            Status::AccountPenalty,
                            format!(
                                "not sent: the service answered code 1 to {code_1_in_a_row} \
                                 creates in a row (items up to {}), as it does to an account \
                                 under a penalty after bursts of writes; wait hours before \
                                 sending the rest",
                                result.index
                            ),
                        )
                    });
                    let stop = penalty.or_else(|| {
                        refused.then(|| {
                            Error::new(
                                result.status,
                                format!(
                                    "not sent: item {} was refused for its token, as every item \
                                 would be: {}",
                                    result.index,
                                    result.error.as_deref().unwrap_or("")
                                ),
                            )
                        })
                    });
                    (result, stop)
                }
                // The journal cannot be written (a full disk, a removed file): the batch cannot
                // keep its promise for the rest, so it stops as a whole, with the batch's own
                // status — after the item settled is reported (a task may have been created
                // with it), so that the caller knows of every task that exists.
                Err(lost) => {
                    let Lost { result, error } = *lost;
                    on_item(&result);
                    let created = results
                        .iter()
                        .chain(std::iter::once(&result))
                        .filter(|r| r.task_id.is_some())
                        .count();
                    return Err(Error::new(
                        error.status(),
                        format!(
                            "batch stopped at item {index} of {}: {}; the items settled before \
                             (tasks created: {created}) were reported to the callback, the \
                             rest were not sent",
                            items.len(),
                            error.message()
                        ),
                    ));
                }
            };
            let go_on = on_item(&result);
            results.push(result);
            stopped = stop.or_else(|| {
                (!go_on).then(|| {
                    Error::new(
                        Status::Cancelled,
                        "not sent: the batch was stopped by its callback",
                    )
                })
            });
        }
        Ok(results)
    }

    /// Works out one item: refused, a duplicate, known to the journal, or sent.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        index: usize,
        raw: &str,
        token: Option<&Token>,
        opts: &BatchOptions,
        end: Option<Instant>,
        journal: &mut Option<Journal>,
        first_of: &mut HashMap<String, usize>,
        results: &[ItemResult],
        running: &mut Running,
        on_wait: &mut dyn FnMut(&ItemResult) -> bool,
    ) -> std::result::Result<ItemResult, Box<Lost>> {
        let req = match OfflineDownload::from_json(raw) {
            Ok(req) => req,
            Err(e) => {
                return Ok(ItemResult::failed(
                    index,
                    &e.context(&format!("item {index}")),
                ))
            }
        };
        // Items identical after normalisation (their request bodies) are one task.
        let key = match req.body() {
            Ok(body) => String::from_utf8(body).unwrap_or_default(),
            Err(e) => return Ok(ItemResult::failed(index, &e)),
        };
        if let Some(&first) = first_of.get(&key) {
            return Ok(ItemResult {
                index,
                duplicate_of: Some(first),
                from_journal: false,
                ..results[first].clone()
            });
        }
        first_of.insert(key.clone(), index);
        if let Some(j) = journal.as_ref() {
            match j.known(&key) {
                Some(Known::Created(id)) => {
                    return Ok(ItemResult {
                        task_id: Some(id),
                        from_journal: true,
                        ..ItemResult::new(index)
                    })
                }
                Some(Known::Unknown) if !opts.retry_unknown => {
                    return Ok(ItemResult {
                        from_journal: true,
                        ..ItemResult::failed(
                            index,
                            &Error::new(
                                Status::OutcomeUnknown,
                                format!(
                                    "item {index}: the journal records it as sent without an \
                                     outcome, so the task may exist; not sent again (set \
                                     `retryUnknown` once you have checked)"
                                ),
                            ),
                        )
                    })
                }
                _ => {}
            }
        }
        let patience_end = end.unwrap_or_else(|| Instant::now() + TASK_LIMIT_PATIENCE);
        let mut wait = TASK_LIMIT_FIRST_WAIT;
        loop {
            if end.is_some_and(|end| Instant::now() >= end) {
                return Ok(ItemResult::failed(
                    index,
                    &Error::new(
                        Status::Timeout,
                        format!("item {index}: not sent: the batch's time limit ran out"),
                    ),
                ));
            }
            // At the running-task cap learnt from a refusal: wait for one of the batch's own
            // tasks to end first (before the journal records a send), instead of being refused again.
            if running.at_cap() {
                self.wait_for_one_to_end(token, running, end.unwrap_or(patience_end));
            }
            if let Some(j) = journal.as_mut() {
                if let Err(error) = j.sending(&key) {
                    let why = Error::new(error.status(), format!("not sent: {}", error.message()));
                    let result = ItemResult::failed(index, &why);
                    return Err(Box::new(Lost { result, error }));
                }
            }
            // Nothing is sent after the batch's time limit, paced turns and retries included.
            let deadline = end.unwrap_or_else(|| self.deadline());
            match self.offline_download_until(token, &req, deadline) {
                Ok(created) => {
                    running.ours.push((created.task_id, req.target));
                    let result = ItemResult {
                        task_id: Some(created.task_id),
                        ..ItemResult::new(index)
                    };
                    if let Some(j) = journal.as_mut() {
                        if let Err(error) = j.outcome(&key, Known::Created(created.task_id), 0) {
                            return Err(Box::new(Lost { result, error }));
                        }
                    }
                    return Ok(result);
                }
                Err(e) => {
                    if certainly_not_created(e.status()) {
                        if let Some(j) = journal.as_mut() {
                            let status = e.status().code();
                            if let Err(error) = j.outcome(&key, Known::NotCreated, status) {
                                let result = ItemResult::failed(index, &e);
                                return Err(Box::new(Lost { result, error }));
                            }
                        }
                    }
                    // Too many running tasks, or too many calls: the service did not act; wait
                    // and try again.
                    let busy = matches!(e.status(), Status::TaskLimit | Status::RateLimited);
                    // Refused for the running-task limit while tasks of this batch run: the
                    // cap is (at most) how many run, and the next goes as soon as one ends.
                    if e.status() == Status::TaskLimit && running.learn_cap() {
                        if !on_wait(&ItemResult::waiting(index, &e)) {
                            return Ok(stopped_while_waiting(index, &e));
                        }
                        if self.wait_for_one_to_end(token, running, end.unwrap_or(patience_end)) {
                            continue;
                        }
                    }
                    if busy && Instant::now() + wait < patience_end {
                        // The caller hears of the wait, and may stop the batch here.
                        if !on_wait(&ItemResult::waiting(index, &e)) {
                            return Ok(stopped_while_waiting(index, &e));
                        }
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(TASK_LIMIT_MAX_WAIT);
                        continue;
                    }
                    return Ok(ItemResult::failed(
                        index,
                        &e.context(&format!("item {index}")),
                    ));
                }
            }
        }
    }

    /// Waits for many tasks: polls the unfinished ones in turn (at the client's
    /// `progressQps`), calls `on_progress` after each poll (`false` stops with `Cancelled`),
    /// and returns each final status, in the order of `task_ids`, when all have ended.
    /// `timeout` `None` waits without limit; when it runs out: `Timeout`.
    pub fn wait_many(
        &self,
        token: Option<&Token>,
        task_ids: &[i64],
        timeout: Option<Duration>,
        on_progress: &mut dyn FnMut(i64, &Progress) -> bool,
    ) -> Result<Vec<TaskStatus>> {
        if let Some(bad) = task_ids.iter().find(|id| **id <= 0) {
            return Err(Error::invalid(format!(
                "task IDs must be positive, not {bad}"
            )));
        }
        let started = Instant::now();
        let end = timeout.map(|t| started + t);
        let mut done: Vec<Option<TaskStatus>> = vec![None; task_ids.len()];
        let mut first = true;
        loop {
            let round = Instant::now();
            for (i, id) in task_ids.iter().enumerate() {
                if done[i].is_some() {
                    continue;
                }
                // A task listed twice is polled once: the later copies take its status.
                if let Some(j) = task_ids[..i].iter().position(|x| x == id) {
                    if done[j].is_some() {
                        done[i] = done[j];
                    }
                    continue;
                }
                let deadline = self.poll_deadline(end, first && timeout == Some(Duration::ZERO));
                let p = match self.progress_until(token, Target::Drive, *id, deadline) {
                    Ok(p) => p,
                    Err(e) if e.status() == Status::RateLimited => continue,
                    Err(e)
                        if e.status() == Status::Timeout
                            && end.is_some_and(|end| Instant::now() >= end) =>
                    {
                        return Err(many_timed_out(&done, started));
                    }
                    Err(e) => return Err(e.context(&format!("wait for task {id}"))),
                };
                if !on_progress(*id, &p) {
                    return Err(Error::new(
                        Status::Cancelled,
                        "wait for tasks: cancelled by the progress callback",
                    ));
                }
                if p.status.is_final() {
                    done[i] = Some(p.status);
                }
            }
            first = false;
            if done.iter().all(Option::is_some) {
                return Ok(done.into_iter().flatten().collect());
            }
            let pause = self.config().poll_interval.saturating_sub(round.elapsed());
            if let Some(end) = end {
                if Instant::now() + pause >= end {
                    return Err(many_timed_out(&done, started));
                }
            }
            std::thread::sleep(pause);
        }
    }
}

/// An item settled while the journal could not be written: its result (a created task
/// included), and the journal's error, which stops the batch.
struct Lost {
    result: ItemResult,
    error: Error,
}

/// Whether a create that failed so certainly created nothing: the service refused it (an
/// API code, an HTTP status of a gateway below 500), or it was not sent. An answer that
/// could not be read (`BadResponse`) or was lost (`OutcomeUnknown`) may stand for a task,
/// so the journal records nothing more for it, and a rerun does not send it blindly.
/// An item not sent because the callback stopped the batch while the item waited (`why`).
fn stopped_while_waiting(index: usize, why: &Error) -> ItemResult {
    ItemResult::failed(
        index,
        &Error::new(
            Status::Cancelled,
            format!(
                "item {index}: not sent: the batch was stopped by its callback while the item \
                 waited ({})",
                why.message()
            ),
        ),
    )
}

/// The batch's own tasks and the running-task cap learnt from the service's refusals.
#[derive(Debug, Default)]
pub(crate) struct Running {
    /// The tasks this batch created, with their endpoint, not yet seen ended.
    ours: Vec<(i64, Target)>,
    /// How many of them may run at once: learnt when a create is refused for the running-task
    /// limit while that many ran.
    cap: Option<usize>,
}

impl Running {
    /// Learns the cap from a refusal: how many of the batch's tasks run now (none: the cap is
    /// held by tasks of others, and cannot be learnt here).
    fn learn_cap(&mut self) -> bool {
        if self.ours.is_empty() {
            return false;
        }
        let n = self.ours.len();
        self.cap = Some(self.cap.map_or(n, |c| c.min(n)));
        true
    }

    fn at_cap(&self) -> bool {
        self.cap.is_some_and(|c| self.ours.len() >= c)
    }
}

impl Client {
    /// Polls the batch's running tasks (at the client's `progressQps`, pausing
    /// `pollIntervalMs` between rounds) until one of them ends, or `until`: whether one ended.
    fn wait_for_one_to_end(
        &self,
        token: Option<&Token>,
        running: &mut Running,
        until: Instant,
    ) -> bool {
        while Instant::now() < until {
            let before = running.ours.len();
            let mut i = 0;
            while i < running.ours.len() {
                let (id, target) = running.ours[i];
                let deadline = until.min(self.deadline());
                match self.progress_until(token, target, id, deadline) {
                    Ok(p) if p.status.is_final() => {
                        running.ours.swap_remove(i);
                    }
                    // Not there (any more): it runs no longer for this batch's count.
                    Err(e) if e.api_code() == 5066 => {
                        running.ours.swap_remove(i);
                    }
                    _ => i += 1,
                }
            }
            if running.ours.len() < before || running.ours.is_empty() {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            std::thread::sleep(self.config().poll_interval.min(left));
        }
        false
    }
}

fn certainly_not_created(status: Status) -> bool {
    !matches!(
        status,
        Status::BadResponse | Status::OutcomeUnknown | Status::Panic | Status::Internal
    )
}

fn many_timed_out(done: &[Option<TaskStatus>], started: Instant) -> Error {
    Error::new(
        Status::Timeout,
        format!(
            "wait for tasks: {} of {} not finished after {} ms",
            done.iter().filter(|d| d.is_none()).count(),
            done.len(),
            started.elapsed().as_millis()
        ),
    )
}

/// The items of a batch: a JSON array, each element kept as written (so that each is checked
/// exactly as a single create's options are).
fn parse_items(text: &str) -> Result<Vec<Box<RawValue>>> {
    if text.len() > MAX_BATCH_LEN {
        return Err(Error::invalid(format!(
            "batch items are {} bytes, more than the limit of {MAX_BATCH_LEN}",
            text.len()
        )));
    }
    let items: Vec<Box<RawValue>> = serde_json::from_str(text).map_err(|e| {
        match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => Error::invalid("batch items must be a JSON array of option objects"),
            Err(_) => Error::new(
                Status::InvalidJson,
                format!("batch items are not valid JSON: {e}"),
            ),
        }
    })?;
    if items.len() > MAX_BATCH_ITEMS {
        return Err(Error::invalid(format!(
            "batch items are {} items, more than the limit of {MAX_BATCH_ITEMS}",
            items.len()
        )));
    }
    Ok(items)
}
