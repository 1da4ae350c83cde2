//! Pacing: how fast a client sends each kind of call, all its threads together — and, with
//! `sharedState`, all the processes of the account together.
//!
//! The service limits how fast a client may call it (SPEC.md: peers pace creates at about 1
//! per second and progress queries at about 5), so a client keeps one schedule per kind of
//! call: each call takes the next free turn, one interval after the turn before. The interval
//! is `1/qps` plus [`MARGIN`]: a server that counts every request in a trailing second must
//! never see `qps + 1`, whatever the jitter between a turn and the request's arrival (up to
//! 100 ms of it). A 429 pauses the kind for every caller; callers whose turn falls inside the
//! pause take a new one, so that after the pause they go one interval apart, never in a
//! burst. A turn is reserved under a short lock (or one store operation) and waited for
//! outside it, so no lock is ever held while a call sleeps. A call whose turn (or the pause)
//! would end after its own time limit fails at once, without sending.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::fork::PerProcess;
use crate::shared::{Slot, Store};

/// The slowest rate accepted: one call in 1,000 s (`createQps` 0.001). Slower is not a rate
/// but a typo, and its interval would not fit the clock.
pub const MIN_QPS: f64 = 0.001;

/// The safety margin: turns are `(1 + MARGIN)/qps` apart, so that any `qps + 1` turns in a
/// row span at least 1.1 s and a trailing-second counter at the server sees at most `qps`
/// even when requests arrive up to 100 ms later or earlier than their turn.
pub const MARGIN: f64 = 0.1;

/// The kinds of call that are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Creates (both endpoints): `createQps`.
    Create,
    /// Progress queries (both endpoints): `progressQps`.
    Progress,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Progress => "progress",
        }
    }
}

/// Why a call cannot have its turn.
#[derive(Debug)]
pub(crate) enum NoTurn {
    /// It would come this long from now, after the call's time limit.
    TooLate(Duration),
    /// The shared state failed.
    Store(Error),
}

/// The schedules of one client.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// What the local schedules' times count from.
    origin: Instant,
    create: Schedule,
    progress: Schedule,
    /// The shared state and the account's name in it: paced kinds take their turns there.
    shared: Option<(Arc<Store>, String)>,
}

impl Pacer {
    /// Schedules of `create_qps` and `progress_qps` calls per second (0: not paced; rates
    /// are checked by the configuration to be 0 or at least [`MIN_QPS`]), kept in `shared`
    /// for the account when given.
    pub(crate) fn new(
        create_qps: f64,
        progress_qps: f64,
        shared: Option<(Arc<Store>, String)>,
    ) -> Pacer {
        Pacer {
            origin: Instant::now(),
            create: Schedule::new(create_qps),
            progress: Schedule::new(progress_qps),
            shared,
        }
    }

    fn schedule(&self, kind: Kind) -> &Schedule {
        match kind {
            Kind::Create => &self.create,
            Kind::Progress => &self.progress,
        }
    }

    /// The shared state, for a kind that is paced (unpaced kinds are this process's own).
    fn store(&self, kind: Kind) -> Option<(&Store, &str)> {
        let (store, account) = self.shared.as_ref()?;
        self.schedule(kind).interval?;
        Some((store, account))
    }

    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Waits for this call's turn, and for any pause the service asked for; returns how long
    /// it waited. `Err(TooLate(wait))` when the turn would come after `deadline`: the call
    /// must not be sent (nothing was reserved for it).
    pub(crate) fn turn(&self, kind: Kind, deadline: Instant) -> Result<Duration, NoTurn> {
        let s = self.schedule(kind);
        // Unpaced and never paused (the usual loopback case): no clock read, no lock.
        if s.interval.is_none() && !s.paused_ever.load(Ordering::Acquire) {
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        loop {
            let wait = self.reserve(kind, deadline)?;
            if wait.is_zero() {
                return Ok(started.elapsed());
            }
            std::thread::sleep(wait);
            // A pause set while this call waited, that covers its turn: take a new turn, in
            // line behind the pause with the other callers.
            if self.paused_for(kind, deadline)?.is_zero() {
                return Ok(started.elapsed());
            }
        }
    }

    /// Reserves the next turn: how long from now it is.
    fn reserve(&self, kind: Kind, deadline: Instant) -> Result<Duration, NoTurn> {
        let s = self.schedule(kind);
        let now = Instant::now();
        let max_wait = deadline.saturating_duration_since(now);
        if let Some((store, account)) = self.store(kind) {
            return match store.reserve(account, kind.name(), s.interval, max_wait, deadline) {
                Ok(Ok(wait)) => Ok(wait),
                Ok(Err(wait)) => Err(NoTurn::TooLate(wait)),
                Err(e) => Err(NoTurn::Store(e)),
            };
        }
        let now_ns = self.now_ns();
        let deadline_ns = now_ns.saturating_add(max_wait.as_nanos() as u64);
        let interval = s.interval.map(|i| i.as_nanos() as u64);
        // A panic while the lock was held left a time at worst: go on with it.
        let mut slot = s.slot.here().lock().unwrap_or_else(|p| p.into_inner());
        match slot.reserve(now_ns, interval, deadline_ns) {
            Ok(at) => Ok(Duration::from_nanos(at - now_ns)),
            Err(at) => Err(NoTurn::TooLate(Duration::from_nanos(at - now_ns))),
        }
    }

    fn paused_for(&self, kind: Kind, deadline: Instant) -> Result<Duration, NoTurn> {
        if let Some((store, account)) = self.store(kind) {
            return store
                .paused_for(account, kind.name(), deadline)
                .map_err(NoTurn::Store);
        }
        let now = self.now_ns();
        let slot = self
            .schedule(kind)
            .slot
            .here()
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Ok(Duration::from_nanos(slot.paused.saturating_sub(now)))
    }

    /// The service asked to slow down (429): no call of this kind goes before `pause` from
    /// now, and those whose turn fell inside the pause take new ones after it. With a shared
    /// state, for every process of the account.
    pub(crate) fn pause(
        &self,
        kind: Kind,
        pause: Duration,
        deadline: Instant,
    ) -> Result<(), Error> {
        let s = self.schedule(kind);
        if let Some((store, account)) = self.store(kind) {
            return store.pause(account, kind.name(), pause, deadline);
        }
        let until = self.now_ns().saturating_add(pause.as_nanos() as u64);
        s.slot
            .here()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pause(until);
        s.paused_ever.store(true, Ordering::Release);
        Ok(())
    }
}

#[derive(Debug)]
struct Schedule {
    /// The least time between two calls, margin included; `None`: not paced.
    interval: Option<Duration>,
    /// The next turn and the pause, in nanoseconds from the pacer's origin; a forked child
    /// paces its own.
    slot: PerProcess<Mutex<Slot>>,
    /// Whether a pause was ever set: spares an unpaced kind the lock until then.
    paused_ever: AtomicBool,
}

impl Schedule {
    fn new(qps: f64) -> Schedule {
        let interval = (qps.is_finite() && qps >= MIN_QPS)
            .then(|| Duration::try_from_secs_f64((1.0 + MARGIN) / qps).ok())
            .flatten();
        Schedule {
            interval,
            slot: PerProcess::default(),
            paused_ever: AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_spaced_by_the_rate_across_threads() {
        let p = std::sync::Arc::new(Pacer::new(20.0, 0.0, None));
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
        // 20 turns at 20 per second with the margin: the last one 19 x 55 ms after the first.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(1040), "{took:?}");
        // Not paced: no wait at all.
        let t = Instant::now();
        for _ in 0..1000 {
            p.turn(Kind::Progress, deadline).expect("free");
        }
        assert!(t.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn a_turn_past_the_deadline_is_refused_and_a_pause_holds_waiting_callers() {
        let p = std::sync::Arc::new(Pacer::new(1.0, 0.0, None));
        p.turn(Kind::Create, Instant::now() + Duration::from_secs(5))
            .expect("the first is free");
        let Err(NoTurn::TooLate(wait)) =
            p.turn(Kind::Create, Instant::now() + Duration::from_millis(100))
        else {
            panic!("the next is a second away");
        };
        assert!(wait > Duration::from_millis(900), "{wait:?}");
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
        p.pause(Kind::Create, Duration::from_millis(1400), Instant::now())
            .expect("paused");
        waiting.join().expect("thread").expect("in time");
        assert!(
            t.elapsed() >= Duration::from_millis(1450),
            "{:?}",
            t.elapsed()
        );
        // An unpaced kind is paused too.
        p.pause(Kind::Progress, Duration::from_millis(300), Instant::now())
            .expect("paused");
        let t = Instant::now();
        p.turn(Kind::Progress, Instant::now() + Duration::from_secs(5))
            .expect("after the pause");
        assert!(
            t.elapsed() >= Duration::from_millis(280),
            "{:?}",
            t.elapsed()
        );
        // A pause past the deadline: refused at once.
        p.pause(Kind::Progress, Duration::from_secs(10), Instant::now())
            .expect("paused");
        assert!(p
            .turn(Kind::Progress, Instant::now() + Duration::from_secs(1))
            .is_err());
    }
}
