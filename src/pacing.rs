//! Pacing: how fast a client sends each kind of call, all its threads together.
//!
//! The service limits how fast a client may call it (SPEC.md: peers pace creates at about 1
//! per second and progress queries at about 5), so a client keeps one schedule per kind of
//! call: each call takes the next free turn, at least `1/qps` after the one before, and a 429
//! moves every later turn of that kind past the pause the service asked for. A turn is
//! reserved under a short lock and waited for outside it, so no lock is ever held while a
//! call sleeps. A call whose turn would come after its own time limit reserves nothing and
//! fails at once, without sending.

use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    create: Schedule,
    progress: Schedule,
}

impl Pacer {
    /// Schedules of `create_qps` and `progress_qps` calls per second (0: not paced).
    pub(crate) fn new(create_qps: f64, progress_qps: f64) -> Pacer {
        Pacer {
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

    /// Waits for this call's turn. `Err(wait)` when the turn would come after `deadline`
    /// (`wait` from now): nothing was reserved, and the call must not be sent.
    pub(crate) fn turn(&self, kind: Kind, deadline: Instant) -> Result<(), Duration> {
        self.schedule(kind).turn(deadline)
    }

    /// The service asked to slow down (429): every later call of this kind waits `pause`
    /// from now at least.
    pub(crate) fn pause(&self, kind: Kind, pause: Duration) {
        self.schedule(kind).pause(pause)
    }

    /// Whether calls of this kind are paced.
    pub(crate) fn paced(&self, kind: Kind) -> bool {
        self.schedule(kind).interval.is_some()
    }
}

#[derive(Debug)]
struct Schedule {
    /// The least time between two calls; `None`: not paced.
    interval: Option<Duration>,
    /// When the next call may go.
    next: Mutex<Option<Instant>>,
}

impl Schedule {
    fn new(qps: f64) -> Schedule {
        let interval = (qps.is_finite() && qps > 0.0).then(|| Duration::from_secs_f64(1.0 / qps));
        Schedule {
            interval,
            next: Mutex::new(None),
        }
    }

    fn turn(&self, deadline: Instant) -> Result<(), Duration> {
        let Some(interval) = self.interval else {
            return Ok(());
        };
        let now = Instant::now();
        let at = {
            // A panic while the lock was held left a time at worst: go on with it.
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let at = next.map_or(now, |n| n.max(now));
            if at >= deadline {
                return Err(at - now);
            }
            *next = Some(at + interval);
            at
        };
        if at > now {
            std::thread::sleep(at - now);
        }
        Ok(())
    }

    fn pause(&self, pause: Duration) {
        if self.interval.is_none() {
            return;
        }
        let until = Instant::now() + pause;
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *next = Some(next.map_or(until, |n| n.max(until)));
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
    fn a_turn_past_the_deadline_is_refused_and_reserves_nothing() {
        let p = Pacer::new(1.0, 1.0);
        let now = Instant::now();
        p.turn(Kind::Create, now + Duration::from_secs(5))
            .expect("the first is free");
        let wait = p
            .turn(Kind::Create, Instant::now() + Duration::from_millis(100))
            .expect_err("the next is a second away");
        assert!(wait > Duration::from_millis(800), "{wait:?}");
        // Nothing was reserved: the next turn is still one second after the first.
        let t = Instant::now();
        p.turn(Kind::Create, Instant::now() + Duration::from_secs(5))
            .expect("in time");
        assert!(t.elapsed() < Duration::from_millis(1100));
        // A 429 pauses the kind for everybody.
        p.pause(Kind::Progress, Duration::from_millis(300));
        let t = Instant::now();
        p.turn(Kind::Progress, Instant::now() + Duration::from_secs(5))
            .expect("after the pause");
        assert!(
            t.elapsed() >= Duration::from_millis(280),
            "{:?}",
            t.elapsed()
        );
    }
}
