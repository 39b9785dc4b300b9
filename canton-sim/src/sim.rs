//! The running simulator: configuration, the state behind one lock, and the
//! participant's processing of the synchronizer's history (offsets with gaps,
//! the clean head, lag and the catch-up window after a start).

use crate::clock::{Clock, ClockMode, wall_now_us};
use crate::faults::Faults;
use crate::ids;
use crate::ledger::encoded::StreamCache;
use crate::state::participant::{Participant, ParticipantMeta};
use crate::state::synchronizer::{ClockFile, Synchronizer, SynchronizerMeta};
use canton_dr_cli::{Error, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Which Canton release's semantics to mimic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Semantics {
    /// Canton 3.3: GetHighestOffsetByTimestamp returns the highest offset at or before the timestamp.
    #[value(name = "3.3")]
    V33,
    /// Canton 3.4.9+: without `force` the timestamp must equal an event's record time.
    #[value(name = "3.4", alias = "3.4.9")]
    V34,
}

impl Semantics {
    /// `3.3` or `3.4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Semantics::V33 => "3.3",
            Semantics::V34 => "3.4",
        }
    }
}

/// What the simulator needs to run (from the command line).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// State directory.
    pub state_dir: PathBuf,
    /// Lookup / upload semantics.
    pub semantics: Semantics,
    /// Allow updates that share a record time.
    pub record_time_ties: bool,
    /// How far the participant's clean head trails the synchronizer.
    pub clean_head_lag: Duration,
    /// How long the participant needs to work off a backlog found at start-up.
    pub catch_up: Duration,
    /// Offset checkpoint cadence in GetUpdates streams.
    pub checkpoint_interval: Duration,
    /// Record-time clock.
    pub clock: ClockMode,
    /// Start of the virtual clock on first start (µs); default: wall now.
    pub clock_start_us: Option<i64>,
    /// Synchronizer id on first start.
    pub synchronizer_id: Option<String>,
    /// Treasury party on first start.
    pub treasury_party: Option<String>,
    /// Further connected synchronizers without traffic.
    pub extra_synchronizers: u32,
    /// Memory budget of the GetUpdates response cache, bytes (0 = off).
    pub stream_cache_bytes: usize,
}

impl SimConfig {
    /// Defaults for `state_dir` (what `serve` uses without flags).
    pub fn new(state_dir: impl Into<PathBuf>) -> SimConfig {
        SimConfig {
            state_dir: state_dir.into(),
            semantics: Semantics::V34,
            record_time_ties: false,
            clean_head_lag: Duration::ZERO,
            catch_up: Duration::from_secs(2),
            checkpoint_interval: Duration::from_secs(1),
            clock: ClockMode::Wall,
            clock_start_us: None,
            synchronizer_id: None,
            treasury_party: None,
            extra_synchronizers: 0,
            stream_cache_bytes: crate::ledger::encoded::DEFAULT_CACHE_MIB << 20,
        }
    }
}

/// Facts fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Synchronizer with the traffic.
    pub synchronizer_id: String,
    /// All connected synchronizers (the traffic one first).
    pub connected_synchronizers: Vec<String>,
    /// Treasury party.
    pub treasury_party: String,
    /// DSO party (default instrument admin).
    pub dso_party: String,
    /// Participant id.
    pub participant_id: String,
    /// Parties hosted by the participant (what a wildcard filter sees).
    pub hosted_parties: Vec<String>,
    /// Incarnation of this run.
    pub incarnation: u64,
}

/// Local parties that trade among themselves (the noise traffic).
pub fn noise_parties() -> [String; 2] {
    [
        ids::local_party("noise-alice"),
        ids::local_party("noise-bob"),
    ]
}

/// Progress of the start-up backlog.
#[derive(Debug, Clone, Copy)]
struct CatchUp {
    started: Instant,
    duration: Duration,
    from: usize,
    to: usize,
}

/// Everything behind the simulator's lock.
#[derive(Debug)]
pub struct SimState {
    /// The synchronizer's history.
    pub sync: Synchronizer,
    /// The participant's local state.
    pub part: Participant,
    /// Record-time clock.
    pub clock: Clock,
    lag_us: i64,
    catch_up: Option<CatchUp>,
    rng: StdRng,
}

/// A consistent view of the participant's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Ledger end (0 = empty).
    pub ledger_end: i64,
    /// Updates processed.
    pub processed: usize,
    /// Clean record time (µs), `None` while the participant has processed nothing.
    pub clean_record_time_us: Option<i64>,
    /// Synchronizer time (µs).
    pub synchronizer_time_us: i64,
    /// Pruned up to (inclusive), 0 = never.
    pub pruned_up_to: i64,
}

impl SimState {
    /// Synchronizer time: the clock, but never before the last record time.
    pub fn synchronizer_time_us(&self) -> i64 {
        let now = self.clock.now_us();
        self.sync.last_record_time().map_or(now, |l| now.max(l))
    }

    /// How far the clean head trails the synchronizer, µs.
    pub fn lag_us(&self) -> i64 {
        self.lag_us
    }

    /// Sets the clean-head lag.
    pub fn set_lag(&mut self, lag: Duration) {
        self.lag_us = lag.as_micros().min(i64::MAX as u128) as i64;
    }

    /// True while the start-up backlog is being worked off.
    pub fn catching_up(&self) -> bool {
        self.catch_up.is_some()
    }

    /// Lets the participant process whatever it may by now. Returns true when
    /// its ledger moved.
    pub fn advance(&mut self) -> std::io::Result<bool> {
        let horizon = self.synchronizer_time_us().saturating_sub(self.lag_us);
        let eligible = self.sync.count_at_or_before(horizon);
        let mut target = eligible;
        let mut catching = false;
        if let Some(cu) = self.catch_up {
            let elapsed = cu.started.elapsed();
            if elapsed < cu.duration && self.part.processed() < cu.to {
                let backlog = (cu.to - cu.from) as f64;
                let frac = elapsed.as_secs_f64() / cu.duration.as_secs_f64();
                let allowed = cu.from + (backlog * frac).floor() as usize;
                target = target.min(allowed);
                catching = true;
            } else {
                self.catch_up = None;
            }
        }
        let before = self.part.processed();
        while self.part.processed() < target {
            let seq = self.part.processed();
            // Live processing interleaves the participant's own internal ledger
            // entries; working off a backlog writes updates back to back.
            let gap = if catching {
                0
            } else {
                match self.rng.random_range(0..10u8) {
                    0..=6 => 0,
                    7 | 8 => 1,
                    _ => 2,
                }
            };
            self.part.assign(seq, gap)?;
        }
        let moved = self.part.processed() != before;
        if moved {
            self.part.flush()?;
        }
        Ok(moved)
    }

    /// The participant's current position.
    pub fn position(&self) -> Position {
        let sync_time = self.synchronizer_time_us();
        let horizon = sync_time.saturating_sub(self.lag_us);
        let processed = self.part.processed();
        let clean = if processed == 0 {
            None
        } else {
            Some(match self.sync.get(processed) {
                Some(next) if next.record_time_us <= horizon => next.record_time_us - 1,
                _ => horizon,
            })
        };
        Position {
            ledger_end: self.part.ledger_end(),
            processed,
            clean_record_time_us: clean,
            synchronizer_time_us: sync_time,
            pruned_up_to: self.part.meta.pruned_up_to,
        }
    }

    /// Persists the virtual clock (no-op for the wall clock).
    pub fn save_clock(&self) -> std::io::Result<()> {
        if let Clock::Virtual { now_us } = self.clock {
            self.sync.save_clock(ClockFile {
                virtual_now_us: now_us,
            })?;
        }
        Ok(())
    }

    /// Flushes both logs and the clock.
    pub fn flush_all(&mut self) -> std::io::Result<()> {
        self.sync.flush()?;
        self.part.flush()?;
        self.part.save_meta()?;
        self.save_clock()
    }
}

/// The simulator shared by all services.
#[derive(Debug)]
pub struct Sim {
    /// Configuration.
    pub config: SimConfig,
    /// Fixed facts.
    pub info: NodeInfo,
    state: Mutex<SimState>,
    progress: watch::Sender<u64>,
    closing: watch::Sender<bool>,
    /// Armed faults.
    pub faults: Faults,
    /// Budget of the encoded GetUpdates responses kept with the updates.
    pub stream_cache: StreamCache,
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    Error::usage(format!("{what}: {e}"))
        .with_hint("check that --state-dir points to a canton-sim state directory you can write")
}

impl Sim {
    /// Opens (creating on first start) the state in `config.state_dir` and
    /// boots the participant: a new incarnation, a few internal ledger
    /// entries, and a catch-up window over the backlog it finds.
    pub fn open(config: SimConfig) -> Result<Arc<Sim>> {
        let dir = config.state_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| {
            io_err(
                &format!("cannot create state directory {}", dir.display()),
                e,
            )
        })?;
        if let Some(id) = &config.synchronizer_id {
            ids::parse_logical_synchronizer_id(id).map_err(|e| {
                Error::usage(format!("--synchronizer-id: {e}"))
                    .with_hint("pass a logical id such as global-domain::1220<64 hex digits>")
            })?;
        }
        let now = wall_now_us();
        let sync = Synchronizer::open_or_create(&dir, || {
            let synchronizer_id = config
                .synchronizer_id
                .clone()
                .unwrap_or_else(ids::default_synchronizer_id);
            SynchronizerMeta {
                extra_synchronizers: (1..=config.extra_synchronizers)
                    .map(|i| ids::unique_id(&format!("extra-domain-{i}"), &synchronizer_id))
                    .collect(),
                treasury_party: config
                    .treasury_party
                    .clone()
                    .unwrap_or_else(|| ids::local_party("treasury")),
                dso_party: ids::remote_party("DSO"),
                created_at_us: now,
                synchronizer_id,
            }
        })
        .map_err(|e| io_err("cannot open the synchronizer history", e))?;
        if let Some(id) = &config.synchronizer_id
            && *id != sync.meta.synchronizer_id
        {
            return Err(Error::usage(format!(
                "--synchronizer-id {id} differs from {} recorded in {}",
                sync.meta.synchronizer_id,
                dir.display()
            ))
            .with_hint("drop --synchronizer-id or use a fresh --state-dir"));
        }
        let mut part = Participant::open_or_create(&dir, || ParticipantMeta {
            participant_id: format!("PAR::participant1::{}", ids::participant_namespace()),
            incarnation: 0,
            pruned_up_to: 0,
            created_at_us: now,
        })
        .map_err(|e| io_err("cannot open the participant state", e))?;
        if part.dars.is_empty() {
            crate::admin::package_service::install_builtin_dars(&mut part.dars, now)
                .map_err(|e| io_err("cannot store the built-in DAR", e))?;
        }
        part.meta.incarnation += 1;
        part.save_meta()
            .map_err(|e| io_err("cannot write the participant state", e))?;
        let clock = match config.clock {
            ClockMode::Wall => Clock::Wall,
            ClockMode::Virtual => {
                let saved = sync
                    .load_clock()
                    .map_err(|e| io_err("cannot read the virtual clock", e))?;
                let start = saved
                    .map(|c| c.virtual_now_us)
                    .or(config.clock_start_us)
                    .unwrap_or(now);
                Clock::Virtual {
                    now_us: sync.last_record_time().map_or(start, |l| start.max(l)),
                }
            }
        };
        let mut extra = sync.meta.extra_synchronizers.clone();
        let mut connected = vec![sync.meta.synchronizer_id.clone()];
        connected.append(&mut extra);
        let mut hosted = vec![sync.meta.treasury_party.clone()];
        hosted.extend(noise_parties());
        let info = NodeInfo {
            synchronizer_id: sync.meta.synchronizer_id.clone(),
            connected_synchronizers: connected,
            treasury_party: sync.meta.treasury_party.clone(),
            dso_party: sync.meta.dso_party.clone(),
            participant_id: part.meta.participant_id.clone(),
            hosted_parties: hosted,
            incarnation: part.meta.incarnation,
        };
        let mut rng = StdRng::from_os_rng();
        // A (re)started participant writes a few internal entries of its own.
        let boot_entries = rng.random_range(1..=3);
        part.add_internal_entries(boot_entries)
            .and_then(|_| part.flush())
            .map_err(|e| io_err("cannot write the participant ledger", e))?;
        let mut state = SimState {
            sync,
            part,
            clock,
            lag_us: 0,
            catch_up: None,
            rng,
        };
        state.set_lag(config.clean_head_lag);
        let horizon = state.synchronizer_time_us() - state.lag_us;
        let backlog_to = state.sync.count_at_or_before(horizon);
        let from = state.part.processed();
        if backlog_to > from && !config.catch_up.is_zero() {
            state.catch_up = Some(CatchUp {
                started: Instant::now(),
                duration: config.catch_up,
                from,
                to: backlog_to,
            });
        }
        state
            .advance()
            .map_err(|e| io_err("cannot write the participant ledger", e))?;
        let (progress, _) = watch::channel(0);
        Ok(Arc::new(Sim {
            stream_cache: StreamCache::new(config.stream_cache_bytes),
            config,
            info,
            state: Mutex::new(state),
            progress,
            closing: watch::channel(false).0,
            faults: Faults::default(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the state after letting the participant catch up; wakes
    /// streams when the ledger moved.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        let mut st = self.lock();
        let mut moved = st.advance().unwrap_or_else(|e| {
            tracing::error!("cannot persist participant progress: {e}");
            false
        });
        let before = st.part.ledger_end();
        let r = f(&mut st);
        moved |= st.part.ledger_end() != before;
        if st.advance().unwrap_or(false) {
            moved = true;
        }
        let end = st.part.ledger_end() as u64;
        drop(st);
        if moved {
            self.progress.send_replace(end);
        }
        r
    }

    /// The participant's position now.
    pub fn position(&self) -> Position {
        self.with_state(|st| st.position())
    }

    /// A receiver that changes whenever the ledger moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// Tells live streams that the node is shutting down.
    pub fn begin_shutdown(&self) {
        self.closing.send_replace(true);
    }

    /// A receiver that turns true when the node shuts down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Lets time-driven progress (lag, catch-up) happen without calls.
    pub fn tick(&self) {
        self.with_state(|_| ());
    }

    /// Flushes every log and snapshot (on shutdown).
    pub fn persist(&self) -> std::io::Result<()> {
        self.lock().flush_all()
    }
}
