//! The synchronizer's clock. Record times follow the wall clock by default;
//! with `--clock virtual` they follow a clock that only `ctl advance-time`
//! (and sequencing itself) moves, so tests can place record times exactly.

use serde::{Deserialize, Serialize};

/// Which clock drives record times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// Record time = max(wall clock, previous record time + 1 µs).
    Wall,
    /// Record time = max(virtual now, previous + 1 µs); moved by `ctl advance-time`.
    Virtual,
}

/// Wall-clock now in µs since the epoch.
pub fn wall_now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The clock state.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The wall clock.
    Wall,
    /// A virtual clock at `now_us`.
    Virtual {
        /// Current virtual time, µs.
        now_us: i64,
    },
}

impl Clock {
    /// Current time of this clock, µs.
    pub fn now_us(&self) -> i64 {
        match self {
            Clock::Wall => wall_now_us(),
            Clock::Virtual { now_us } => *now_us,
        }
    }

    /// Moves a virtual clock forward to at least `t_us` (time never goes back).
    pub fn observe(&mut self, t_us: i64) {
        if let Clock::Virtual { now_us } = self {
            *now_us = (*now_us).max(t_us);
        }
    }

    /// Advances a virtual clock by `by_us`; refused for the wall clock.
    pub fn advance(&mut self, by_us: i64) -> Result<i64, &'static str> {
        match self {
            Clock::Wall => Err(
                "the simulator runs on the wall clock; start it with --clock virtual to move time",
            ),
            Clock::Virtual { now_us } => {
                *now_us = now_us.saturating_add(by_us);
                Ok(*now_us)
            }
        }
    }

    /// The record time for the next update after `last_us`: the clock's now, but
    /// strictly after the previous record time, or equal to it for a tie.
    pub fn next_record_time(&mut self, last_us: Option<i64>, tie: bool) -> i64 {
        let now = self.now_us();
        let rt = match last_us {
            Some(last) if tie => last,
            Some(last) => now.max(last + 1),
            None => now,
        };
        self.observe(rt);
        rt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_times_strictly_increase_unless_tied() {
        let mut c = Clock::Virtual { now_us: 100 };
        assert_eq!(c.next_record_time(None, false), 100);
        assert_eq!(c.next_record_time(Some(100), false), 101);
        assert_eq!(c.now_us(), 101);
        assert_eq!(c.next_record_time(Some(101), true), 101);
        assert_eq!(c.advance(1000).unwrap(), 1101);
        assert_eq!(c.next_record_time(Some(101), false), 1101);
        assert!(Clock::Wall.advance(1).is_err());
        let mut w = Clock::Wall;
        let far = wall_now_us() + 10_000_000_000;
        assert_eq!(w.next_record_time(Some(far), false), far + 1);
    }
}
