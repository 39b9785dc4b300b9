//! Faults armed through the control service: the next N calls UNAVAILABLE
//! (per API), added latency on every call, GetUpdates streams cut after K
//! messages. (A lagging clean head lives in the participant state.)

use std::sync::Mutex;
use std::time::Duration;

/// Which API a call came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The admin API.
    Admin,
    /// The ledger API.
    Ledger,
}

/// The armed faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultState {
    /// Admin calls still to fail with UNAVAILABLE.
    pub unavailable_admin: u32,
    /// Ledger calls still to fail with UNAVAILABLE.
    pub unavailable_ledger: u32,
    /// Delay added before every admin or ledger call.
    pub latency: Duration,
    /// Cut GetUpdates streams after this many messages.
    pub cut_after: u32,
    /// How many more streams to cut.
    pub cut_streams: u32,
}

/// Armed faults, shared by all services.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

impl Faults {
    fn with<R>(&self, f: impl FnOnce(&mut FaultState) -> R) -> R {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// A copy of the armed faults.
    pub fn snapshot(&self) -> FaultState {
        self.with(|s| *s)
    }

    /// Arms `calls` UNAVAILABLE answers on `api` (both when `None`).
    pub fn arm_unavailable(&self, calls: u32, api: Option<Api>) {
        self.with(|s| match api {
            Some(Api::Admin) => s.unavailable_admin = calls,
            Some(Api::Ledger) => s.unavailable_ledger = calls,
            None => {
                s.unavailable_admin = calls;
                s.unavailable_ledger = calls;
            }
        })
    }

    /// Sets the added latency.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency)
    }

    /// Arms cutting the next `streams` GetUpdates streams after `after` messages.
    pub fn arm_cut(&self, after: u32, streams: u32) {
        self.with(|s| {
            s.cut_after = after;
            s.cut_streams = streams.max(1);
        })
    }

    /// Disarms everything.
    pub fn clear(&self) {
        self.with(|s| *s = FaultState::default())
    }

    /// True when this call on `api` must fail with UNAVAILABLE (consumes one).
    pub fn take_unavailable(&self, api: Api) -> bool {
        self.with(|s| {
            let n = match api {
                Api::Admin => &mut s.unavailable_admin,
                Api::Ledger => &mut s.unavailable_ledger,
            };
            if *n > 0 {
                *n -= 1;
                true
            } else {
                false
            }
        })
    }

    /// The latency to add to a call.
    pub fn latency(&self) -> Duration {
        self.with(|s| s.latency)
    }

    /// For a new GetUpdates stream: cut it after this many messages (consumes one).
    pub fn take_cut(&self) -> Option<u32> {
        self.with(|s| {
            if s.cut_streams > 0 {
                s.cut_streams -= 1;
                Some(s.cut_after)
            } else {
                None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_counts_down_per_api() {
        let f = Faults::default();
        f.arm_unavailable(2, Some(Api::Admin));
        assert!(!f.take_unavailable(Api::Ledger));
        assert!(f.take_unavailable(Api::Admin));
        assert!(f.take_unavailable(Api::Admin));
        assert!(!f.take_unavailable(Api::Admin));
        f.arm_cut(3, 0);
        assert_eq!(f.take_cut(), Some(3));
        assert_eq!(f.take_cut(), None);
        f.set_latency(Duration::from_millis(5));
        f.clear();
        assert_eq!(f.snapshot(), FaultState::default());
    }
}
