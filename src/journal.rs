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
use std::os::unix::fs::OpenOptionsExt;
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
        let existed = std::fs::symlink_metadata(path).is_ok();
        // Private (it holds source and callback URLs, often signed), never through a symbolic
        // link (a shared directory's planted link would redirect the writes), and only a
        // regular file: a device (/dev/zero) or a FIFO would be read without end, or block
        // (`O_NONBLOCK` has no effect on a file). Checked on the open file, not before.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    Error::invalid(format!(
                        "batch: the journal `{}` is a symbolic link, which is not followed",
                        shown()
                    ))
                } else if e.raw_os_error() == Some(libc::EISDIR) {
                    Error::invalid(format!(
                        "batch: the journal `{}` is not a regular file (a directory)",
                        shown()
                    ))
                } else {
                    io_err("opened for writing", e)
                }
            })?;
        let meta = file.metadata().map_err(|e| io_err("read", e))?;
        if !meta.is_file() {
            return Err(Error::invalid(format!(
                "batch: the journal `{}` is not a regular file",
                shown()
            )));
        }
        if meta.len() > MAX_JOURNAL_LEN {
            return Err(Error::invalid(format!(
                "batch: the journal `{}` is {} bytes, more than the limit of \
                 {MAX_JOURNAL_LEN}; start a new one",
                shown(),
                meta.len()
            )));
        }
        if !existed {
            // The new file's name is durable too: its directory is synced.
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err("made durable (its directory synced)", e))?;
        }
        let exists = meta.len() > 0;
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
        let mut header_seen = false;
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
                // Lines of NUL bytes are what a filesystem leaves of unwritten blocks after a
                // power loss: nothing was recorded there.
                if line.iter().all(|b| *b == 0) {
                    continue;
                }
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
                    // A crash mid-write tears the last line only; when that line is the header
                    // (the crash came while the journal was made), nothing was recorded yet:
                    // the journal starts again, if what is there is the start of a header.
                    Err(_)
                        if n == last
                            && (header_seen
                                || header_line().starts_with(line.trim_end_matches('\0'))) =>
                    {
                        torn_at = Some(*at as u64);
                        break;
                    }
                    Err(_) => return Err(bad("not JSON")),
                };
                if !header_seen {
                    header_seen = true;
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
        if exists && !header_seen {
            // Nothing but zeroed blocks or a torn header: nothing was recorded.
            torn_at = Some(0);
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
            journal.append(&serde_json::from_str(&header_line()).unwrap_or(Value::Null))?;
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
        // Never past what a later run can read back.
        let len = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        if len + line.len() as u64 > MAX_JOURNAL_LEN {
            return Err(Error::invalid(format!(
                "batch: the journal `{}` would grow past the limit of {MAX_JOURNAL_LEN} bytes; \
                 start a new one",
                printable(&self.path.display().to_string(), 200)
            )));
        }
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

/// The journal's first line.
fn header_line() -> String {
    json!({"journal": MAGIC, "version": JOURNAL_VERSION}).to_string()
}

impl Drop for Journal {
    /// The lock is released explicitly: a child forked during the batch holds a copy of the
    /// descriptor, which would otherwise keep the lock after the batch returned.
    fn drop(&mut self) {
        let _ = self.file.unlock();
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
    fn a_journal_is_private_and_a_torn_or_zeroed_header_starts_again() {
        use std::os::unix::fs::PermissionsExt;
        let p = temp("private");
        drop(Journal::open(&p).expect("new"));
        let mode = std::fs::metadata(&p).expect("made").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A crash while the header was written, or blocks a power loss left zeroed.
        for torn in [
            &b"{\"journal\":\"pan-off"[..],
            &[0u8; 40][..],
            b"\0\0\0\n\0\0",
        ] {
            std::fs::write(&p, torn).expect("write");
            let mut j = Journal::open(&p).expect("starts again");
            j.sending("a").expect("send");
            drop(j);
            let j = Journal::open(&p).expect("reads back");
            assert_eq!(j.known("a"), Some(Known::Unknown));
        }
        // A symbolic link is not followed.
        let target = temp("target");
        std::fs::write(&target, b"").expect("target");
        let link = temp("link");
        std::os::unix::fs::symlink(&target, &link).expect("link");
        let e = Journal::open(&link).err().expect("a link");
        assert!(e.message().contains("symbolic link"), "{e}");
        for f in [&p, &target, &link] {
            let _ = std::fs::remove_file(f);
        }
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_by_name() {
        for (name, text) in [
            ("notjson", "hello\nworld\n"),
            ("noheader", "{\"event\":\"send\",\"key\":\"a\"}\n"),
            ("blankfirst", "\nhello\nworld\n"),
            ("blankthenjson", "\n{\"event\":\"send\",\"key\":\"a\"}\n{}\n"),
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
