//! The offline download calls: create a task, query its progress.

use crate::client::{Client, Request};
use crate::envelope::positive_id;
use crate::error::{Error, Result, Status};
use crate::options::OfflineDownload;
use crate::token::Token;

/// A task the service created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The task ID, used to query progress.
    pub task_id: i64,
    /// The request's `x-traceID`.
    pub trace_id: String,
}

/// A task's state, numbered as the progress query numbers it (not as the callback does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum TaskStatus {
    /// Downloading (0).
    Downloading = 0,
    /// Failed (1).
    Failed = 1,
    /// Succeeded (2).
    Succeeded = 2,
    /// Retrying (3).
    Retrying = 3,
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
    /// The request's `x-traceID`.
    pub trace_id: String,
}

impl Client {
    /// Creates an offline download task (`POST /api/v1/offline/download`).
    pub fn offline_download(&self, token: &Token, req: &OfflineDownload) -> Result<Created> {
        let body = req.body()?;
        let answer = self.call(&Request {
            what: "create offline download task",
            path: "/api/v1/offline/download",
            body: Some(&body),
            token: Some(token),
            idempotent: false,
        })?;
        let task_id = positive_id(&answer, "taskID")
            .map_err(|e| e.context("create offline download task"))?;
        Ok(Created {
            task_id,
            trace_id: answer.trace_id,
        })
    }

    /// Queries a task's progress (`GET /api/v1/offline/download/process?taskID=`).
    pub fn offline_progress(&self, token: &Token, task_id: i64) -> Result<Progress> {
        check_task_id(task_id)?;
        let path = format!("/api/v1/offline/download/process?taskID={task_id}");
        let answer = self.call(&Request {
            what: "query offline download progress",
            path: &path,
            body: None,
            token: Some(token),
            idempotent: true,
        })?;
        let bad = |why: String| {
            Error::new(
                Status::BadResponse,
                format!(
                    "query offline download progress: {why} (trace ID {})",
                    answer.trace_id
                ),
            )
            .with_api(0, &answer.trace_id)
        };
        let process = answer
            .data
            .get("process")
            .and_then(serde_json::Value::as_f64)
            .filter(|p| (0.0..=100.0).contains(p))
            .ok_or_else(|| bad("the answer has no `data.process` from 0 to 100".into()))?;
        let status = match answer
            .data
            .get("status")
            .and_then(serde_json::Value::as_i64)
        {
            Some(0) => TaskStatus::Downloading,
            Some(1) => TaskStatus::Failed,
            Some(2) => TaskStatus::Succeeded,
            Some(3) => TaskStatus::Retrying,
            other => {
                return Err(bad(format!(
                    "the answer's `data.status` is {other:?}, not 0, 1, 2 or 3"
                )))
            }
        };
        Ok(Progress {
            process,
            status,
            trace_id: answer.trace_id,
        })
    }
}

fn check_task_id(task_id: i64) -> Result<()> {
    if task_id <= 0 {
        return Err(Error::invalid(format!(
            "task ID must be positive, not {task_id}"
        )));
    }
    Ok(())
}
