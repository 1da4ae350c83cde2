//! The offline download calls: create a task, query its progress, wait for its end.

use std::time::{Duration, Instant};

use crate::client::{Auth, Client, Request};
use crate::config::MIN_POLL_INTERVAL;
use crate::envelope::{positive_id, Answer};
use crate::error::{Error, Result, Status};
use crate::options::{Checked, OfflineDownload, Target};
use crate::pacing::Kind;
use crate::redact::printable;
use crate::spare::TraceId;
use crate::token::Token;

/// A task the service created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The task ID, used to query progress.
    pub task_id: i64,
    /// The request's `x-traceID`.
    pub trace_id: TraceId,
}

/// A task's state, numbered as the progress query numbers it (not as the callback does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
#[non_exhaustive]
pub enum TaskStatus {
    /// Downloading (0).
    Downloading = 0,
    /// Failed (1).
    Failed = 1,
    /// Succeeded (2).
    Succeeded = 2,
    /// Retrying (3).
    Retrying = 3,
    /// A number outside 0–3 (the service may add statuses): taken as not finished, so a wait
    /// goes on polling until its time limit; the number is in [`Progress::raw_status`].
    Unknown = -1,
}

impl Progress {
    /// The status number for C: as the service sent it, kept within `int32_t`.
    pub fn status_code(&self) -> i32 {
        i32::try_from(self.raw_status).unwrap_or(if self.raw_status < 0 {
            i32::MIN
        } else {
            i32::MAX
        })
    }
}

impl TaskStatus {
    /// Whether the task has ended.
    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Failed | TaskStatus::Succeeded)
    }
}

/// One answer of the progress query.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Percent done, 0 to 100 (may have a fraction; drops to 0 when a download fails).
    pub process: f64,
    /// The task's state.
    pub status: TaskStatus,
    /// The `status` number as the service sent it (the same as `status` for 0–3).
    pub raw_status: i64,
    /// The request's `x-traceID`.
    pub trace_id: TraceId,
}

/// Longest pause between polls after the service asked to slow down.
const MAX_POLL_BACKOFF: Duration = Duration::from_secs(10);

impl Client {
    /// Creates an offline download task (`POST /api/v1/offline/download`, or the image
    /// hosting endpoint for a request made for [`Target::Image`]). With `token` `None` the
    /// client's own token is used (see [`Config::client_id`](crate::Config::client_id)).
    pub fn offline_download(
        &self,
        token: Option<&Token>,
        req: &OfflineDownload,
    ) -> Result<Created> {
        self.create_until(token, req.target, &req.body()?, self.deadline())
    }

    /// [`Client::offline_download`], ending by `deadline` (or the call's own limit, if
    /// sooner).
    pub(crate) fn offline_download_until(
        &self,
        token: Option<&Token>,
        req: &OfflineDownload,
        deadline: Instant,
    ) -> Result<Created> {
        let deadline = deadline.min(self.deadline());
        self.create_until(token, req.target, &req.body()?, deadline)
    }

    /// Creates a task from options checked where the caller wrote them (the C ABI's path).
    pub(crate) fn offline_download_checked(
        &self,
        token: Option<&Token>,
        req: &Checked<'_>,
    ) -> Result<Created> {
        self.create_until(token, req.target, &req.body(), self.deadline())
    }

    /// Sends a create request with this body (checked JSON) to `target`'s endpoint, ending by
    /// `deadline` (no later than the client's own limit: the callers see to it).
    fn create_until(
        &self,
        token: Option<&Token>,
        target: Target,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Created> {
        let path = match target {
            Target::Drive => "/api/v1/offline/download",
            Target::Image => "/api/v1/oss/offline/download",
        };
        let req = Request {
            what: "create offline download task",
            path,
            body: Some(body),
            auth: Auth::Token(token),
            idempotent: false,
            secret: None,
            creates: true,
            wants_date: false,
            pace: Some(Kind::Create),
        };
        self.call_until(&req, deadline, |answer| {
            Ok(Created {
                task_id: positive_id(&answer, "taskID")?,
                trace_id: answer.trace_id,
            })
        })
    }

    /// Queries a task's progress (`GET /api/v1/offline/download/process?taskID=`, or the
    /// image hosting one).
    pub fn offline_progress(
        &self,
        token: Option<&Token>,
        target: Target,
        task_id: i64,
    ) -> Result<Progress> {
        self.progress_until(token, target, task_id, self.deadline())
    }

    pub(crate) fn progress_until(
        &self,
        token: Option<&Token>,
        target: Target,
        task_id: i64,
        deadline: Instant,
    ) -> Result<Progress> {
        if task_id <= 0 {
            return Err(Error::invalid(format!(
                "task ID must be positive, not {task_id}"
            )));
        }
        let path = match target {
            Target::Drive => format!("/api/v1/offline/download/process?taskID={task_id}"),
            Target::Image => format!("/api/v1/oss/offline/download/process?taskID={task_id}"),
        };
        let req = Request {
            what: "query offline download progress",
            path: &path,
            body: None,
            auth: Auth::Token(token),
            idempotent: true,
            secret: None,
            creates: false,
            wants_date: false,
            pace: Some(Kind::Progress),
        };
        self.call_until(&req, deadline, read_progress)
    }

    /// When a poll of a wait ending at `end` must end: by `end` — except the one poll of a
    /// wait of 0 (`once`: "look once, do not wait", not "do not look"), which gets the call's
    /// own limit — and never after the call's own limit.
    pub(crate) fn poll_deadline(&self, end: Option<Instant>, once: bool) -> Instant {
        match end {
            Some(end) if !once => end.min(self.deadline()),
            _ => self.deadline(),
        }
    }

    /// Polls a task every `poll_interval` until it succeeds or fails, calling `on_progress`
    /// after each poll; `on_progress` returning `false` stops with `Cancelled`. A failed task is
    /// `Ok(TaskStatus::Failed)`: the call worked, the download did not. `timeout` `None` waits
    /// without limit (each poll still has the configured limit); when it runs out: `Timeout`.
    /// When the service asks to slow down, the pause doubles (up to 10 s) and polling goes on.
    pub fn wait(
        &self,
        token: Option<&Token>,
        target: Target,
        task_id: i64,
        timeout: Option<Duration>,
        on_progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<TaskStatus> {
        let started = Instant::now();
        let end = timeout.map(|t| started + t);
        let mut pause = self.config().poll_interval.max(MIN_POLL_INTERVAL);
        let mut first = true;
        // The trace ID of the last answered poll, kept on a time-out or cancellation.
        let mut last_trace = String::new();
        loop {
            let deadline = self.poll_deadline(end, first && timeout == Some(Duration::ZERO));
            first = false;
            match self.progress_until(token, target, task_id, deadline) {
                Ok(p) => {
                    last_trace.clear();
                    last_trace.push_str(&p.trace_id);
                    if !on_progress(&p) {
                        return Err(Error::new(
                            Status::Cancelled,
                            format!("wait for task {task_id}: cancelled by the progress callback"),
                        )
                        .with_api(0, &last_trace));
                    }
                    if p.status.is_final() {
                        return Ok(p.status);
                    }
                }
                Err(e) if e.status() == Status::RateLimited => {
                    pause = (pause * 2).min(MAX_POLL_BACKOFF);
                }
                Err(e)
                    if e.status() == Status::Timeout
                        && end.is_some_and(|end| Instant::now() >= end) =>
                {
                    return Err(timed_out(task_id, started).with_api(0, &last_trace));
                }
                Err(e) => return Err(e),
            }
            if let Some(end) = end {
                let now = Instant::now();
                if now + pause >= end {
                    // One last look exactly at the end is not worth a late answer: stop here.
                    if now < end {
                        std::thread::sleep(end - now);
                    }
                    return Err(timed_out(task_id, started).with_api(0, &last_trace));
                }
            }
            std::thread::sleep(pause);
        }
    }
}

/// How far outside 0..100 a `process` may come and still be read (clamped): floating-point
/// arithmetic on the server; a value further out is not a percentage.
const PROCESS_SLACK: f64 = 0.5;

/// Reads `{"process": <number>, "status": <int>}`.
fn read_progress(answer: Answer) -> Result<Progress> {
    let bad = |why: String| answer.bad(&why);
    // A percentage computed in floating point may come a hair outside 0..100
    // (100.0000000000001): clamped, not refused.
    let process = answer
        .data
        .get("process")
        .and_then(serde_json::Value::as_f64)
        .filter(|p| (-PROCESS_SLACK..=100.0 + PROCESS_SLACK).contains(p))
        // `+ 0.0` turns -0.0 into 0.0.
        .map(|p| p.clamp(0.0, 100.0) + 0.0)
        .ok_or_else(|| bad("the answer has no `data.process` from 0 to 100".into()))?;
    let raw_status = answer
        .data
        .get("status")
        .and_then(|v| match v {
            serde_json::Value::Number(n) => crate::envelope::integral(n),
            _ => None,
        })
        .ok_or_else(|| {
            bad(format!(
                "the answer's `data.status` is {}, not an integer",
                answer
                    .data
                    .get("status")
                    .map_or("missing".to_owned(), |v| printable(&v.to_string(), 40))
            ))
        })?;
    let status = match raw_status {
        0 => TaskStatus::Downloading,
        1 => TaskStatus::Failed,
        2 => TaskStatus::Succeeded,
        3 => TaskStatus::Retrying,
        _ => TaskStatus::Unknown,
    };
    Ok(Progress {
        process,
        status,
        raw_status,
        trace_id: answer.trace_id,
    })
}

fn timed_out(task_id: i64, started: Instant) -> Error {
    Error::new(
        Status::Timeout,
        format!(
            "wait for task {task_id}: not finished after {} ms",
            started.elapsed().as_millis()
        ),
    )
}
