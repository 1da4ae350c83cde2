//! A shared state in a private directory: the processes of one machine.
//!
//! Per account (see [`super::account_key`]):
//! - `token-<key>.json`, the token record, replaced whole by a rename (a reader never sees
//!   half of one), and `token-<key>.lock`, the lock one fetching process holds (`flock`);
//! - `pace-<key>.json`, the schedules, read and rewritten under an `flock` of the file itself,
//!   on the machine's monotonic clock (`CLOCK_MONOTONIC`, one for every process; the boot ID
//!   beside it tells a schedule of an earlier boot, which is then ignored).
//!
//! The directory is made 0700 and the files 0600; a directory that another user owns or that
//! group or others may write is refused (as ssh refuses such a `~/.ssh`). Files are opened
//! with `O_NOFOLLOW` and `O_CLOEXEC`; locks are released explicitly, so that a child forked
//! while one was held does not keep it.

// The OS calls a lock, the user's ID and the shared clock need (flock, geteuid, clock_gettime).
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{parse_record, record_bytes, store_error, Slot, TokenRecord, MAX_RECORD};
use crate::error::{Error, Result, Status};
use crate::redact::printable;

/// A shared-state directory.
pub(crate) struct DirStore {
    path: PathBuf,
    /// This boot's ID, which a pacing file's times belong to.
    boot: String,
}

/// The pacing file: the schedules by kind, on the clock of the boot `boot`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PaceFile {
    #[serde(default)]
    boot: String,
    #[serde(default)]
    kinds: BTreeMap<String, Slot>,
}

impl DirStore {
    /// Opens (and if needed makes) the directory `spec`; `from` names the setting.
    pub(crate) fn open(spec: &str, from: &str) -> Result<DirStore> {
        let shown = printable(spec, 200);
        let bad = |why: String| Error::invalid(format!("{from}: directory `{shown}` {why}"));
        if spec.is_empty() {
            return Err(Error::invalid(format!("{from} is empty")));
        }
        if spec.as_bytes().contains(&0) {
            return Err(bad("contains a NUL byte".into()));
        }
        let path = PathBuf::from(spec);
        make(&path).map_err(|e| bad(format!("cannot be made: {e}")))?;
        let path = path
            .canonicalize()
            .map_err(|e| bad(format!("cannot be resolved: {e}")))?;
        check_private(&path).map_err(bad)?;
        Ok(DirStore {
            path,
            boot: boot_id(),
        })
    }

    /// The directory, made again if it was removed, and checked again: private to this user,
    /// in directories only this user or root may change. Done before each token write (the
    /// token is the one secret stored) and when a file cannot be opened for want of the
    /// directory.
    fn ensure(&self) -> Result<()> {
        let again = |why: String| {
            Error::invalid(format!(
                "shared state {}: {why}; a state that is not private is not used",
                self.describe()
            ))
        };
        make(&self.path).map_err(|e| self.err("make the directory again", e))?;
        check_private(&self.path).map_err(again)
    }

    pub(crate) fn describe(&self) -> String {
        format!("directory {}", printable(&self.path.to_string_lossy(), 200))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn err(&self, what: &str, why: impl std::fmt::Display) -> Error {
        store_error(Status::Network, &self.describe(), what, why)
    }

    pub(crate) fn read_token(&self, account: &str) -> Result<TokenRecord> {
        let path = self.file(&format!("token-{account}.json"));
        match open_file(&path, false) {
            Ok(mut f) => Ok(parse_record(
                &read_all(&mut f).map_err(|e| self.err("read the token", e))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenRecord::default()),
            Err(e) => Err(self.err("read the token", e)),
        }
    }

    pub(crate) fn update_token(
        &self,
        account: &str,
        deadline: Instant,
        update: &mut dyn FnMut(TokenRecord) -> Option<TokenRecord>,
    ) -> Result<()> {
        let lock_path = self.file(&format!("token-{account}.lock"));
        self.ensure()?;
        let lock = open_file(&lock_path, true).map_err(|e| self.err("open the token lock", e))?;
        let _held = Flock::take(&lock, deadline).map_err(|e| match e {
            None => Error::new(
                Status::Timeout,
                format!(
                    "shared state {}: the call's time limit ran out while another process \
                     fetched the token",
                    self.describe()
                ),
            ),
            Some(e) => self.err("lock the token", e),
        })?;
        let record = self.read_token(account)?;
        if let Some(new) = update(record) {
            self.replace(&format!("token-{account}.json"), &record_bytes(&new)?)?;
        }
        Ok(())
    }

    /// Replaces a file whole: written to a new private file, synced, renamed over the old.
    fn replace(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = self.file(&format!(
            ".{name}.{}.{}",
            std::process::id(),
            super::unix_ms()
        ));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.file(name))
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.err("write the token", e)
        })
    }

    /// Runs `f` on the pacing file's schedule of `kind`, under its lock, with the clock's now.
    fn with_slot<T>(
        &self,
        account: &str,
        kind: &str,
        f: impl FnOnce(&mut Slot, u64) -> T,
    ) -> Result<T> {
        let path = self.file(&format!("pace-{account}.json"));
        let mut file = match open_file(&path, true) {
            // The directory was removed (a cleaner of /tmp, a user): made again, checked again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.ensure()?;
                open_file(&path, true)
            }
            other => other,
        }
        .map_err(|e| self.err("open the pacing file", e))?;
        // A turn is taken in microseconds: no deadline is needed for a lock held that long.
        let _held = Flock::take(&file, Instant::now() + Duration::from_secs(10)).map_err(|e| {
            self.err(
                "lock the pacing file",
                e.map_or("held for 10 s by another process".to_owned(), |e| {
                    e.to_string()
                }),
            )
        })?;
        let bytes = read_all(&mut file).map_err(|e| self.err("read the pacing file", e))?;
        let mut pace: PaceFile = parse_record(&bytes);
        if pace.boot != self.boot {
            // Times of another boot (or a new file): they mean nothing on this clock.
            pace = PaceFile {
                boot: self.boot.clone(),
                kinds: BTreeMap::new(),
            };
        }
        let slot = pace.kinds.entry(kind.to_owned()).or_default();
        let before = *slot;
        let out = f(slot, monotonic_ns());
        if *slot != before {
            let bytes = record_bytes(&pace)?;
            let mut write = || -> std::io::Result<()> {
                file.set_len(0)?;
                file.rewind()?;
                file.write_all(&bytes)
            };
            write().map_err(|e| self.err("write the pacing file", e))?;
        }
        Ok(out)
    }

    pub(crate) fn reserve(
        &self,
        account: &str,
        kind: &str,
        interval: Option<Duration>,
        max_wait: Duration,
    ) -> Result<std::result::Result<Duration, Duration>> {
        let interval = interval.map(|i| i.as_nanos() as u64);
        self.with_slot(account, kind, |slot, now| {
            let deadline = now.saturating_add(max_wait.as_nanos() as u64);
            match slot.reserve(now, interval, deadline) {
                Ok(at) => Ok(Duration::from_nanos(at - now)),
                Err(at) => Err(Duration::from_nanos(at - now)),
            }
        })
    }

    pub(crate) fn pause(&self, account: &str, kind: &str, pause: Duration) -> Result<()> {
        self.with_slot(account, kind, |slot, now| {
            slot.pause(now.saturating_add(pause.as_nanos() as u64))
        })
    }

    pub(crate) fn paused_for(&self, account: &str, kind: &str) -> Result<Duration> {
        self.with_slot(account, kind, |slot, now| {
            Duration::from_nanos(slot.paused.saturating_sub(now))
        })
    }
}

/// Makes the directory (and its missing parents) 0700; one that exists is left as it is.
fn make(path: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        // Something else of that name: said by the checks, precisely.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Whether `path` (canonical) is a private directory of this user that this user can write,
/// under directories that only this user or root can change (or sticky ones, as /tmp): what
/// ssh asks of `~/.ssh`. `Err` says why not.
fn check_private(path: &Path) -> std::result::Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_dir() {
        return Err("is not a directory".into());
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!(
            "belongs to user {}, not to this user ({me}): its files could be changed by \
             another user",
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(format!(
            "may be written by group or others (mode {:o}); make it private: chmod 700",
            mode & 0o7777
        ));
    }
    for parent in path.ancestors().skip(1) {
        let Ok(m) = std::fs::metadata(parent) else {
            continue;
        };
        let pmode = m.permissions().mode();
        let sticky = pmode & 0o1000 != 0;
        if (m.uid() != me && m.uid() != 0) || (pmode & 0o022 != 0 && !sticky) {
            return Err(format!(
                "is inside `{}`, which another user may change (owner {}, mode {:o}): \
                 the state could be replaced under this process",
                printable(&parent.to_string_lossy(), 200),
                m.uid(),
                pmode & 0o7777
            ));
        }
    }
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "contains a NUL byte".to_owned())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(format!(
            "cannot be written: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// An `flock` held on a descriptor that outlives it, released explicitly when dropped.
struct Flock(std::os::fd::RawFd);

impl Flock {
    /// Takes the exclusive lock, waiting for it until `deadline` (`Err(None)`: not in time).
    fn take(
        file: &std::fs::File,
        deadline: Instant,
    ) -> std::result::Result<Flock, Option<std::io::Error>> {
        let mut pause = Duration::from_micros(200);
        loop {
            // SAFETY: a valid descriptor, owned by `file` for the lock's life.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Flock(file.as_raw_fd()));
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                return Err(Some(e));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        // Explicitly: a forked child's copy of the descriptor would otherwise keep the lock.
        // SAFETY: the descriptor is still open (the file outlives the guard).
        unsafe { libc::flock(self.0, libc::LOCK_UN) };
    }
}

/// Opens a file of the store, private, never through a symbolic link, and only a regular
/// file (`O_NONBLOCK`: a FIFO put in its place must not hold the call; no effect on files).
fn open_file(path: &Path, create: bool) -> std::io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

fn read_all(f: &mut std::fs::File) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    f.take(MAX_RECORD as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The machine's monotonic clock, in nanoseconds: one clock for every process of a boot.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// This boot's ID (Linux), so that a schedule of an earlier boot is not read on this one's
/// clock; where there is none, the time the machine booted, from the two clocks.
fn boot_id() -> String {
    if let Ok(id) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        return id.trim().to_owned();
    }
    let booted = super::unix_ms() / 1000 - (monotonic_ns() / 1_000_000_000) as i64;
    // Rounded to a minute: the two clocks are not read at the same instant.
    format!("booted-{}", booted / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pan-shared-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_new_directory_and_its_files_are_private() {
        let d = temp_dir("private");
        let s = DirStore::open(d.to_str().expect("utf-8"), "`sharedState`").expect("opens");
        assert_eq!(
            std::fs::metadata(&d).expect("made").permissions().mode() & 0o777,
            0o700
        );
        s.update_token("k", Instant::now() + Duration::from_secs(5), &mut |_| {
            Some(TokenRecord {
                failures: 2,
                ..TokenRecord::default()
            })
        })
        .expect("written");
        assert_eq!(s.read_token("k").expect("read").failures, 2);
        s.reserve(
            "k",
            "create",
            Some(Duration::from_millis(1)),
            Duration::from_secs(1),
        )
        .expect("store")
        .expect("turn");
        for f in std::fs::read_dir(&d).expect("list") {
            let f = f.expect("entry");
            let mode = f.metadata().expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{:?}", f.file_name());
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_directory_others_may_write_is_refused_by_name() {
        let d = temp_dir("open");
        std::fs::create_dir_all(&d).expect("made");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let e = DirStore::open(d.to_str().expect("utf-8"), "config: `sharedState`")
            .err()
            .expect("refused");
        assert_eq!(e.status(), Status::InvalidArgument);
        assert!(e.message().contains("`sharedState`"), "{}", e.message());
        assert!(e.message().contains("chmod 700"), "{}", e.message());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_symlinked_record_is_not_followed() {
        let d = temp_dir("symlink");
        let s = DirStore::open(d.to_str().expect("utf-8"), "`sharedState`").expect("opens");
        let target = d.join("elsewhere");
        std::fs::write(&target, b"{}").expect("target");
        std::os::unix::fs::symlink(&target, d.join("token-k.json")).expect("link");
        assert!(s.read_token("k").is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
