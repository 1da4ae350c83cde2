//! The batch journal: what a batch sent and what came of it, one JSON line per event, each
//! made durable (fsync) before the batch goes on, so that a batch that dies at any point can
//! be run again without creating anything twice.
//!
//! ```text
//! {"journal":"pan-offline batch","version":1}
//! {"event":"send","key":"<the request body>"}
//! {"event":"created","key":"...","taskID":394756}
//! {"event":"send","key":"..."}
//! {"event":"notCreated","key":"...","status":10}
//! ```
//!
//! An item is known by its request body (the normalised options), not by its place in the
//! list, so a list may be reordered or grown between runs. A `send` without an outcome after
//! it is an unknown outcome: the process died (or the answer was lost) after the request may
//! have left. The last line may be torn by a crash mid-write; it is ignored. Anything else
//! that is not a line of this journal is refused, naming the file and the line.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::redact::printable;

/// The journal format's version; a journal of a later version is refused.
pub const JOURNAL_VERSION: u64 = 1;
const MAGIC: &str = "pan-offline batch";
/// Largest journal read, in bytes (a line per event: about 200 bytes an item).
const MAX_JOURNAL_LEN: u64 = 1 << 30;

/// What the journal knows of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// Created, with this task ID.
    Created(i64),
    /// Sent, and no outcome recorded: the task may exist.
    Unknown,
    /// Certainly not created (the service refused it, or it was never sent).
    NotCreated,
}

/// An open journal.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    known: HashMap<String, Known>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads what it knows.
    pub(crate) fn open(path: &Path) -> Result<Journal> {
        let shown = || printable(&path.display().to_string(), 200);
        let io_err = |what: &str, e: std::io::Error| {
            Error::invalid(format!(
                "batch: the journal `{}` cannot be {what}: {e}",
                shown()
            ))
        };
        let mut known = HashMap::new();
        // Only a regular file: a device (/dev/zero) or a FIFO would be read without end, or
        // block. (The metadata is read without opening.)
        let exists = match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {
                if m.len() > MAX_JOURNAL_LEN {
                    return Err(Error::invalid(format!(
                        "batch: the journal `{}` is {} bytes, more than the limit of \
                         {MAX_JOURNAL_LEN}; start a new one",
                        shown(),
                        m.len()
                    )));
                }
                true
            }
            Ok(_) => {
                return Err(Error::invalid(format!(
                    "batch: the journal `{}` is not a regular file",
                    shown()
                )))
            }
            Err(_) => false,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_err("opened for writing", e))?;
        // One batch at a time per journal, in this process or another: two would each send
        // what the other is sending. (An advisory lock, released when the file is closed,
        // even by a crash.)
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::invalid(format!(
                    "batch: the journal `{}` is in use by another batch; run one batch per \
                     journal at a time",
                    shown()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err("locked", e)),
        }
        // Read under the lock: what another batch wrote before it let go is seen.
        // Where a torn last line starts, to cut it off before appending.
        let mut torn_at = None;
        let mut unended = false;
        if exists {
            let bytes = std::fs::read(path).map_err(|e| io_err("read", e))?;
            // A whole last line whose line end was not written yet.
            unended = bytes.last().is_some_and(|b| *b != b'\n');
            let mut offset = 0;
            let lines: Vec<(usize, &[u8])> = bytes
                .split(|b| *b == b'\n')
                .map(|l| {
                    let at = offset;
                    offset += l.len() + 1;
                    (at, l)
                })
                .collect();
            let last = lines.len().saturating_sub(1);
            for (n, (at, line)) in lines.iter().enumerate() {
                let line = String::from_utf8_lossy(line);
                if line.trim().is_empty() {
                    continue;
                }
                let bad = |why: &str| {
                    Error::invalid(format!(
                        "batch: `{}` is not a pan-offline batch journal (line {}: {why})",
                        shown(),
                        n + 1
                    ))
                };
                let value: Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    // A crash mid-write tears the last line only.
                    Err(_) if n == last && n > 0 => {
                        torn_at = Some(*at as u64);
                        break;
                    }
                    Err(_) => return Err(bad("not JSON")),
                };
                if n == 0 {
                    if value["journal"] != MAGIC {
                        return Err(bad("no journal header"));
                    }
                    match value["version"].as_u64() {
                        Some(v) if v <= JOURNAL_VERSION => continue,
                        _ => return Err(bad("a version this library does not read")),
                    }
                }
                let key = value["key"].as_str().ok_or_else(|| bad("no `key`"))?;
                let state = match value["event"].as_str() {
                    Some("send") => Known::Unknown,
                    Some("created") => Known::Created(
                        value["taskID"]
                            .as_i64()
                            .filter(|id| *id > 0)
                            .ok_or_else(|| bad("no `taskID`"))?,
                    ),
                    Some("notCreated") => Known::NotCreated,
                    // Events of a later minor version are skipped.
                    _ => continue,
                };
                // A created task stays created whatever comes after (a rerun never sends it).
                if !matches!(known.get(key), Some(Known::Created(_))) {
                    known.insert(key.to_owned(), state);
                }
            }
        }
        if let Some(at) = torn_at {
            // The torn line is cut off, so that the journal stays one of whole lines.
            file.set_len(at)
                .and_then(|()| file.sync_data())
                .map_err(|e| io_err("written", e))?;
        }
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
        let mut journal = Journal {
            path: path.to_owned(),
            file,
            known,
        };
        if empty {
            journal.append(&json!({"journal": MAGIC, "version": JOURNAL_VERSION}))?;
        } else if unended && torn_at.is_none() {
            journal
                .file
                .write_all(b"\n")
                .and_then(|()| journal.file.sync_data())
                .map_err(|e| io_err("written", e))?;
        }
        Ok(journal)
    }

    /// What the journal knows of the item with this key.
    pub(crate) fn known(&self, key: &str) -> Option<Known> {
        self.known.get(key).copied()
    }

    /// Records that the item is about to be sent; durable when this returns.
    pub(crate) fn sending(&mut self, key: &str) -> Result<()> {
        self.append(&json!({"event": "send", "key": key}))?;
        self.known.insert(key.to_owned(), Known::Unknown);
        Ok(())
    }

    /// Records the item's outcome: created, or certainly not created. (An unknown outcome
    /// is recorded by recording nothing after `sending`.)
    pub(crate) fn outcome(&mut self, key: &str, outcome: Known, status: i32) -> Result<()> {
        let line = match outcome {
            Known::Created(id) => json!({"event": "created", "key": key, "taskID": id}),
            Known::NotCreated => json!({"event": "notCreated", "key": key, "status": status}),
            Known::Unknown => return Ok(()),
        };
        self.append(&line)?;
        self.known.insert(key.to_owned(), outcome);
        Ok(())
    }

    fn append(&mut self, value: &Value) -> Result<()> {
        let mut line = value.to_string();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                Error::invalid(format!(
                    "batch: the journal `{}` cannot be written: {e}",
                    printable(&self.path.display().to_string(), 200)
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("pan-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn events_are_read_back_and_a_torn_last_line_is_ignored() {
        let p = temp("torn");
        {
            let mut j = Journal::open(&p).expect("new");
            j.sending("a").expect("send a");
            j.outcome("a", Known::Created(7), 0).expect("a created");
            j.sending("b").expect("send b");
            j.sending("c").expect("send c");
            j.outcome("c", Known::NotCreated, 10).expect("c refused");
        }
        let mut text = std::fs::read_to_string(&p).expect("read");
        text.push_str(r#"{"event":"created","key":"b","ta"#);
        std::fs::write(&p, text).expect("tear");
        let mut j = Journal::open(&p).expect("reopened");
        assert_eq!(j.known("a"), Some(Known::Created(7)));
        assert_eq!(j.known("b"), Some(Known::Unknown));
        assert_eq!(j.known("c"), Some(Known::NotCreated));
        assert_eq!(j.known("d"), None);
        j.sending("d").expect("appends after the torn line");
        drop(j);
        let j = Journal::open(&p).expect("again");
        assert_eq!(j.known("d"), Some(Known::Unknown));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_by_name() {
        for (name, text) in [
            ("notjson", "hello\nworld\n"),
            ("noheader", "{\"event\":\"send\",\"key\":\"a\"}\n"),
            ("future", "{\"journal\":\"pan-offline batch\",\"version\":99}\n"),
            (
                "middle",
                "{\"journal\":\"pan-offline batch\",\"version\":1}\nnot json\n{\"event\":\"send\",\"key\":\"a\"}\n",
            ),
        ] {
            let p = temp(name);
            std::fs::write(&p, text).expect("write");
            let e = Journal::open(&p).err().expect(name);
            assert!(e.message().contains("not a pan-offline batch journal"), "{e}");
            assert!(e.message().contains(&p.display().to_string()), "{e}");
            let _ = std::fs::remove_file(&p);
        }
    }
}
