//! Pacing: how fast a client sends each kind of call, all its threads together.
//!
//! The service limits how fast a client may call it (SPEC.md: peers pace creates at about 1
//! per second and progress queries at about 5), so a client keeps one schedule per kind of
//! call: each call takes the next free turn, at least `1/qps` after the one before. A 429
//! pauses the kind for every caller — those already waiting for a turn included, and those of
//! an unpaced kind too. A turn is reserved under a short lock and waited for outside it, so
//! no lock is ever held while a call sleeps. A call whose turn (or the pause) would end after
//! its own time limit fails at once, without sending.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::fork::PerProcess;

/// The slowest rate accepted: one call in 1,000 s (`createQps` 0.001). Slower is not a rate
/// but a typo, and its interval would not fit the clock.
pub const MIN_QPS: f64 = 0.001;

/// The kinds of call that are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Creates (both endpoints): `createQps`.
    Create,
    /// Progress queries (both endpoints): `progressQps`.
    Progress,
}

/// The schedules of one client.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// What the pause times count from.
    origin: Instant,
    create: Schedule,
    progress: Schedule,
}

impl Pacer {
    /// Schedules of `create_qps` and `progress_qps` calls per second (0: not paced; rates
    /// are checked by the configuration to be 0 or at least [`MIN_QPS`]).
    pub(crate) fn new(create_qps: f64, progress_qps: f64) -> Pacer {
        Pacer {
            origin: Instant::now(),
            create: Schedule::new(create_qps),
            progress: Schedule::new(progress_qps),
        }
    }

    fn schedule(&self, kind: Kind) -> &Schedule {
        match kind {
            Kind::Create => &self.create,
            Kind::Progress => &self.progress,
        }
    }

    /// Waits for this call's turn, and for any pause the service asked for; returns how long
    /// it waited. `Err(wait)` when the turn would come after `deadline` (`wait` from now):
    /// the call must not be sent (its turn, if it had one reserved, passes unused).
    pub(crate) fn turn(&self, kind: Kind, deadline: Instant) -> Result<Duration, Duration> {
        let s = self.schedule(kind);
        // Unpaced and never paused (the usual loopback case): no clock read at all.
        if s.interval.is_none() && s.paused_until.load(Ordering::Acquire) == 0 {
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        if let Some(interval) = s.interval {
            let now = Instant::now();
            let at = {
                // A panic while the lock was held left a time at worst: go on with it.
                let mut next = s.next.here().lock().unwrap_or_else(|p| p.into_inner());
                let at = next.map_or(now, |n| n.max(now));
                if at >= deadline {
                    return Err(at - now);
                }
                *next = at.checked_add(interval);
                at
            };
            if at > now {
                std::thread::sleep(at - now);
            }
        }
        // A pause set while this call waited for its turn holds it too.
        loop {
            let until = self.paused_until(s);
            let now = Instant::now();
            match until {
                Some(until) if until > now => {
                    if until >= deadline {
                        return Err(until - now);
                    }
                    std::thread::sleep(until - now);
                }
                _ => return Ok(started.elapsed()),
            }
        }
    }

    /// The service asked to slow down (429): every call of this kind waits until `pause`
    /// from now at least, those already waiting for a turn included.
    pub(crate) fn pause(&self, kind: Kind, pause: Duration) {
        let s = self.schedule(kind);
        let until = (Instant::now() + pause).saturating_duration_since(self.origin);
        let nanos = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        s.paused_until.fetch_max(nanos, Ordering::AcqRel);
    }

    fn paused_until(&self, s: &Schedule) -> Option<Instant> {
        match s.paused_until.load(Ordering::Acquire) {
            0 => None,
            n => self.origin.checked_add(Duration::from_nanos(n)),
        }
    }
}

#[derive(Debug)]
struct Schedule {
    /// The least time between two calls; `None`: not paced.
    interval: Option<Duration>,
    /// When the next call may go (`None` before the first); a forked child paces its own.
    next: PerProcess<Mutex<Option<Instant>>>,
    /// Until when the service asked this kind to pause, in nanoseconds from the pacer's
    /// origin (0: never): one atomic load per call, not a lock.
    paused_until: AtomicU64,
}

impl Schedule {
    fn new(qps: f64) -> Schedule {
        let interval = (qps.is_finite() && qps >= MIN_QPS)
            .then(|| Duration::try_from_secs_f64(1.0 / qps).ok())
            .flatten();
        Schedule {
            interval,
            next: PerProcess::default(),
            paused_until: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_spaced_by_the_rate_across_threads() {
        let p = std::sync::Arc::new(Pacer::new(20.0, 0.0));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(5);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        p.turn(Kind::Create, deadline).expect("in time");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        // 20 turns at 20 per second: the last one 0.95 s after the first.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");
        // Not paced: no wait at all.
        let t = Instant::now();
        for _ in 0..1000 {
            p.turn(Kind::Progress, deadline).expect("free");
        }
        assert!(t.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn a_turn_past_the_deadline_is_refused_and_a_pause_holds_waiting_callers() {
        let p = std::sync::Arc::new(Pacer::new(1.0, 0.0));
        p.turn(Kind::Create, Instant::now() + Duration::from_secs(5))
            .expect("the first is free");
        let wait = p
            .turn(Kind::Create, Instant::now() + Duration::from_millis(100))
            .expect_err("the next is a second away");
        assert!(wait > Duration::from_millis(800), "{wait:?}");
        // A caller already waiting for its turn (about 1 s away) is held by a pause set
        // meanwhile until the pause ends (1.5 s).
        let t = Instant::now();
        let waiting = {
            let p = p.clone();
            std::thread::spawn(move || {
                p.turn(Kind::Create, Instant::now() + Duration::from_secs(5))
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        p.pause(Kind::Create, Duration::from_millis(1400));
        waiting.join().expect("thread").expect("in time");
        assert!(
            t.elapsed() >= Duration::from_millis(1450),
            "{:?}",
            t.elapsed()
        );
        // An unpaced kind is paused too.
        p.pause(Kind::Progress, Duration::from_millis(300));
        let t = Instant::now();
        p.turn(Kind::Progress, Instant::now() + Duration::from_secs(5))
            .expect("after the pause");
        assert!(
            t.elapsed() >= Duration::from_millis(280),
            "{:?}",
            t.elapsed()
        );
        // A pause past the deadline: refused at once.
        p.pause(Kind::Progress, Duration::from_secs(10));
        assert!(p
            .turn(Kind::Progress, Instant::now() + Duration::from_secs(1))
            .is_err());
    }
}
