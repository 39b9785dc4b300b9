//! tSafe: the record time ingestion must pass before withdrawals may resume.
//!
//! Bounds, each a record time no in-flight withdrawal can commit at or after:
//! - `maxTrecTgt`: the largest `trec_tgt` of in-flight (requested, submitted)
//!   withdrawals still in the DB — a transfer commits strictly before its trecTgt;
//! - `ttlBound`: `frozen_at + ttl + skew margin` — a request the restore lost
//!   was created before the freeze, so its trecTgt ≤ frozen_at + ttl (with a
//!   constant ttl); the margin absorbs clock differences. Without a freeze the
//!   base is the database's `now()` (an estimate: withdrawals can still be created);
//! - `recorded`: the tSafe an earlier `wait` of this freeze recorded.
//!
//! tSafe is the latest of the bounds known. Without a ttl (no `--ttl`, none
//! recorded at freeze) and no recorded tSafe it is unknown: the lost requests
//! would be unbounded.

use crate::settings::TtlSettings;
use crate::sql;
use canton_dr_cli::time::format_record_time;
use canton_dr_cli::{Error, Result};
use chrono::{DateTime, Utc};
use integration_db::GenericClient;
use integration_db::gate::{self, Gate};
use integration_db::withdrawals::{self, Withdrawal};
use serde::Serialize;
use std::time::Duration;

/// Everything tSafe is computed from, read from the DB.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The gate row (`None`: never frozen).
    pub gate: Option<Gate>,
    /// In-flight withdrawals.
    pub in_flight: Vec<Withdrawal>,
    /// The database clock.
    pub db_now: DateTime<Utc>,
}

/// Reads [`Inputs`] for `gate_name`.
pub async fn gather(c: &impl GenericClient, gate_name: &str) -> Result<Inputs> {
    Ok(Inputs {
        gate: gate::get(c, gate_name).await?,
        in_flight: withdrawals::list_in_flight(c).await?,
        db_now: sql::db_now(c).await?,
    })
}

/// Which bound decides tSafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Winner {
    /// The largest trecTgt of in-flight withdrawals.
    MaxTrecTgt,
    /// frozen_at + ttl + margin.
    TtlBound,
    /// The tSafe recorded by an earlier wait.
    Recorded,
}

/// Where the ttl came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TtlSource {
    /// `--ttl` / `WITHDRAWAL_TTL`.
    Argument,
    /// Recorded by `freeze --ttl`.
    Freeze,
}

/// What the ttl bound is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TtlBase {
    /// The freeze time.
    FrozenAt,
    /// The database's `now()` (the gate is not frozen: an estimate).
    Now,
}

/// tSafe and how it came about (the `tsafe` command's output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TSafe {
    /// Gate.
    pub gate: String,
    /// Frozen now.
    pub frozen: bool,
    /// Since when.
    #[serde(with = "integration_db::serde_time::option")]
    pub frozen_at: Option<DateTime<Utc>>,
    /// The record time ingestion must pass (`None`: unknown, see `warnings`).
    #[serde(with = "integration_db::serde_time::option")]
    pub t_safe: Option<DateTime<Utc>>,
    /// Which bound decides it.
    pub winner: Option<Winner>,
    /// Largest trecTgt of in-flight withdrawals.
    #[serde(with = "integration_db::serde_time::option")]
    pub max_trec_tgt: Option<DateTime<Utc>>,
    /// The withdrawal that has it.
    pub max_trec_tgt_withdrawal_id: Option<String>,
    /// frozen_at (or now) + ttl + skew margin.
    #[serde(with = "integration_db::serde_time::option")]
    pub ttl_bound: Option<DateTime<Utc>>,
    /// What the ttl bound is measured from.
    pub ttl_base: Option<TtlBase>,
    /// The ttl used, milliseconds.
    pub ttl_ms: Option<u64>,
    /// Where it came from.
    pub ttl_source: Option<TtlSource>,
    /// The skew margin, milliseconds.
    pub skew_margin_ms: u64,
    /// tSafe recorded by an earlier wait of this freeze.
    #[serde(rename = "recordedTSafe", with = "integration_db::serde_time::option")]
    pub recorded_t_safe: Option<DateTime<Utc>>,
    /// In-flight withdrawals.
    pub in_flight: usize,
    /// Of which without a trecTgt (not bounded by maxTrecTgt).
    pub in_flight_without_trec_tgt: usize,
    /// Why tSafe may be too early or unknown.
    pub warnings: Vec<String>,
}

impl TSafe {
    /// tSafe, or the error saying why it is unknown.
    pub fn require(&self) -> Result<DateTime<Utc>> {
        self.t_safe.ok_or_else(|| {
            Error::usage(format!(
                "tSafe of gate \"{}\" is unknown: no withdrawal ttl is known, so requests lost in a restore are not bounded",
                self.gate
            ))
            .with_hint("pass --ttl (or set WITHDRAWAL_TTL) to the ttl Exchange Internal Systems use for trecTgt")
        })
    }

    /// The text form: the gate, then [`TSafe::bounds_text`].
    pub fn to_text(&self) -> String {
        format!(
            "gate {} {}\n{}",
            self.gate,
            if self.frozen { "FROZEN" } else { "open" },
            self.bounds_text()
        )
    }

    /// tSafe, the bounds and the warnings, one per line.
    pub fn bounds_text(&self) -> String {
        let t = |v: Option<DateTime<Utc>>| v.map_or_else(|| "-".to_string(), format_record_time);
        let mut s = format!(
            "tSafe        {} (winner: {})\nmaxTrecTgt   {} ({} in flight{})\nttlBound     {}{}\n",
            t(self.t_safe),
            self.winner.map_or("-", |w| match w {
                Winner::MaxTrecTgt => "maxTrecTgt",
                Winner::TtlBound => "ttlBound",
                Winner::Recorded => "recorded",
            }),
            t(self.max_trec_tgt),
            self.in_flight,
            self.max_trec_tgt_withdrawal_id
                .as_deref()
                .map_or(String::new(), |id| format!(", latest {id}")),
            t(self.ttl_bound),
            self.ttl_ms.map_or(String::new(), |ms| format!(
                " (ttl {} s + margin {} ms from {})",
                ms as f64 / 1000.0,
                self.skew_margin_ms,
                match self.ttl_base {
                    Some(TtlBase::Now) => "now",
                    _ => "frozenAt",
                }
            )),
        );
        if let Some(r) = self.recorded_t_safe {
            s.push_str(&format!("recorded     {}\n", format_record_time(r)));
        }
        for w in &self.warnings {
            s.push_str(&format!("warning: {w}\n"));
        }
        s
    }
}

/// Computes tSafe from `inputs` and the ttl settings.
pub fn compute(gate_name: &str, inputs: &Inputs, ttl: &TtlSettings) -> TSafe {
    let mut warnings = Vec::new();
    let frozen_gate = inputs.gate.as_ref().filter(|g| g.frozen);
    let frozen_at = frozen_gate.and_then(|g| g.frozen_at);

    let with_trec: Vec<&Withdrawal> = inputs
        .in_flight
        .iter()
        .filter(|w| w.trec_tgt.is_some())
        .collect();
    let latest = with_trec.iter().max_by(|a, b| {
        a.trec_tgt
            .cmp(&b.trec_tgt)
            .then(b.withdrawal_id.cmp(&a.withdrawal_id))
    });
    let without = inputs.in_flight.len() - with_trec.len();
    if without > 0 {
        warnings.push(format!(
            "{without} in-flight withdrawal(s) have no trecTgt: tSafe does not bound them"
        ));
    }

    let recorded_ttl = frozen_gate
        .and_then(|g| g.ttl_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs);
    let (ttl_used, ttl_source) = match (ttl.ttl, recorded_ttl) {
        (Some(arg), Some(rec)) => {
            if arg < rec {
                warnings.push(format!(
                    "--ttl {} s is shorter than the {} s recorded at freeze; using --ttl",
                    arg.as_secs_f64(),
                    rec.as_secs()
                ));
            }
            (Some(arg), Some(TtlSource::Argument))
        }
        (Some(arg), None) => (Some(arg), Some(TtlSource::Argument)),
        (None, Some(rec)) => (Some(rec), Some(TtlSource::Freeze)),
        (None, None) => (None, None),
    };
    let (base, ttl_base) = match frozen_at {
        Some(at) => (at, TtlBase::FrozenAt),
        None => {
            warnings.push(
                "the gate is not frozen: withdrawals can still be created, so the ttl bound is an estimate from now"
                    .to_string(),
            );
            (inputs.db_now, TtlBase::Now)
        }
    };
    let ttl_bound = ttl_used.and_then(|d| {
        let span = chrono::Duration::from_std(d.checked_add(ttl.skew_margin)?).ok()?;
        base.checked_add_signed(span)
    });
    if ttl_used.is_some() && ttl_bound.is_none() {
        warnings.push("frozen_at + ttl is beyond the representable time range".to_string());
    }
    if ttl_used.is_none() {
        warnings.push("no withdrawal ttl known (--ttl, WITHDRAWAL_TTL, or freeze --ttl): requests lost in a restore are not bounded".to_string());
    }
    let recorded = frozen_gate.and_then(|g| g.tsafe);

    let max_trec_tgt = latest.and_then(|w| w.trec_tgt);
    let mut t_safe = None;
    let mut winner = None;
    if ttl_bound.is_some() || recorded.is_some() {
        for (candidate, which) in [
            (max_trec_tgt, Winner::MaxTrecTgt),
            (ttl_bound, Winner::TtlBound),
            (recorded, Winner::Recorded),
        ] {
            if let Some(c) = candidate
                && t_safe.is_none_or(|t| c > t)
            {
                t_safe = Some(c);
                winner = Some(which);
            }
        }
    }

    TSafe {
        gate: gate_name.to_string(),
        frozen: frozen_gate.is_some(),
        frozen_at,
        t_safe,
        winner,
        max_trec_tgt,
        max_trec_tgt_withdrawal_id: latest.map(|w| w.withdrawal_id.clone()),
        ttl_bound,
        ttl_base: ttl_used.map(|_| ttl_base),
        ttl_ms: ttl_used.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        ttl_source,
        skew_margin_ms: u64::try_from(ttl.skew_margin.as_millis()).unwrap_or(u64::MAX),
        recorded_t_safe: recorded,
        in_flight: inputs.in_flight.len(),
        in_flight_without_trec_tgt: without,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canton_dr_cli::time::parse_record_time;
    use integration_db::withdrawals::WithdrawalStatus;

    fn at(s: &str) -> DateTime<Utc> {
        parse_record_time(s, "t").unwrap()
    }

    fn withdrawal(id: &str, trec_tgt: Option<&str>) -> Withdrawal {
        Withdrawal {
            withdrawal_id: id.into(),
            account_id: None,
            receiver: None,
            instrument_admin: None,
            instrument_id: None,
            amount: None,
            trec_tgt: trec_tgt.map(at),
            status: WithdrawalStatus::Submitted,
            failure_reason: None,
            completed_update_id: None,
            completed_record_time: None,
            needs_reconciliation: false,
            created_at: at("2025-01-01T00:00:00Z"),
            updated_at: at("2025-01-01T00:00:00Z"),
        }
    }

    fn frozen_gate(ttl_seconds: Option<i64>, tsafe: Option<&str>) -> Gate {
        Gate {
            gate: "g".into(),
            frozen: true,
            frozen_at: Some(at("2025-01-01T10:00:00Z")),
            frozen_by: Some("op@host".into()),
            reason: Some("restore".into()),
            ttl_seconds,
            tsafe: tsafe.map(at),
            thawed_at: None,
            thawed_by: None,
            thaw_reason: None,
            updated_at: at("2025-01-01T10:00:00Z"),
        }
    }

    fn inputs(gate: Option<Gate>, in_flight: Vec<Withdrawal>) -> Inputs {
        Inputs {
            gate,
            in_flight,
            db_now: at("2025-01-01T10:30:00Z"),
        }
    }

    fn ttl(ttl: Option<u64>, margin_ms: u64) -> TtlSettings {
        TtlSettings {
            ttl: ttl.map(Duration::from_secs),
            skew_margin: Duration::from_millis(margin_ms),
        }
    }

    #[test]
    fn ttl_bound_wins_over_earlier_trec_tgts() {
        let i = inputs(
            Some(frozen_gate(Some(3600), None)),
            vec![
                withdrawal("w1", Some("2025-01-01T10:20:00Z")),
                withdrawal("w2", Some("2025-01-01T10:40:00Z")),
            ],
        );
        let t = compute("g", &i, &ttl(None, 1000));
        assert_eq!(t.ttl_source, Some(TtlSource::Freeze));
        assert_eq!(t.ttl_bound, Some(at("2025-01-01T11:00:01Z")));
        assert_eq!(t.max_trec_tgt, Some(at("2025-01-01T10:40:00Z")));
        assert_eq!(t.max_trec_tgt_withdrawal_id.as_deref(), Some("w2"));
        assert_eq!(
            (t.t_safe, t.winner),
            (Some(at("2025-01-01T11:00:01Z")), Some(Winner::TtlBound))
        );
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn a_later_trec_tgt_wins_and_the_argument_overrides_the_recorded_ttl() {
        let i = inputs(
            Some(frozen_gate(Some(3600), None)),
            vec![
                withdrawal("w9", Some("2025-01-01T12:00:00Z")),
                withdrawal("w0", None),
            ],
        );
        let t = compute("g", &i, &ttl(Some(600), 0));
        assert_eq!(t.ttl_source, Some(TtlSource::Argument));
        assert_eq!(t.ttl_bound, Some(at("2025-01-01T10:10:00Z")));
        assert_eq!(
            (t.t_safe, t.winner),
            (Some(at("2025-01-01T12:00:00Z")), Some(Winner::MaxTrecTgt))
        );
        assert_eq!(t.in_flight_without_trec_tgt, 1);
        assert_eq!(t.warnings.len(), 2, "{:?}", t.warnings);
    }

    #[test]
    fn a_recorded_tsafe_is_never_lowered() {
        let i = inputs(
            Some(frozen_gate(Some(60), Some("2025-01-02T00:00:00Z"))),
            vec![],
        );
        let t = compute("g", &i, &ttl(None, 0));
        assert_eq!(
            (t.t_safe, t.winner),
            (Some(at("2025-01-02T00:00:00Z")), Some(Winner::Recorded))
        );
    }

    #[test]
    fn unknown_without_a_ttl_and_estimated_from_now_when_open() {
        let i = inputs(
            Some(frozen_gate(None, None)),
            vec![withdrawal("w1", Some("2025-01-01T12:00:00Z"))],
        );
        let t = compute("g", &i, &ttl(None, 0));
        assert_eq!(t.t_safe, None);
        let e = t.require().unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(e.hint().unwrap().contains("--ttl"));

        let open = inputs(None, vec![]);
        let t = compute("g", &open, &ttl(Some(60), 0));
        assert!(!t.frozen);
        assert_eq!(t.ttl_base, Some(TtlBase::Now));
        assert_eq!(t.t_safe, Some(at("2025-01-01T10:31:00Z")));
        assert!(t.warnings.iter().any(|w| w.contains("not frozen")));
    }
}
