//! Puts the exchange's traffic on the simulated synchronizer: deposits to the
//! treasury, withdrawals from it (committed only before their `trecTgt`),
//! noise between other local parties, and bulk mixes of all three for
//! benchmarks. How the updates look on the ledger API is in `events`.

use crate::amount::{SCALE, format_amount, parse_amount};
use crate::ids;
use crate::sim::{SimState, noise_parties};
use crate::state::synchronizer::{HoldingRef, Instrument, SequencedUpdate, UpdateBody};
use std::sync::Arc;

/// Why traffic could not be put on the synchronizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficError {
    /// Bad request (amount, ids, tie without `--record-time-ties`).
    Invalid(String),
    /// The treasury cannot fund a withdrawal.
    InsufficientFunds(String),
    /// Writing the history failed.
    Io(String),
}

impl From<std::io::Error> for TrafficError {
    fn from(e: std::io::Error) -> Self {
        TrafficError::Io(e.to_string())
    }
}

/// A deposit to submit.
#[derive(Debug, Clone)]
pub struct DepositSpec {
    /// Deposit account (the reason metadata).
    pub account: String,
    /// Amount in 10^-10 units.
    pub amount: i128,
    /// Instrument.
    pub instrument: Instrument,
    /// Sending customer.
    pub customer: String,
    /// Share the previous update's record time.
    pub same_record_time: bool,
}

/// A withdrawal to submit.
#[derive(Debug, Clone)]
pub struct WithdrawSpec {
    /// Withdrawal id (the reason metadata).
    pub withdrawal_id: String,
    /// Amount in 10^-10 units.
    pub amount: i128,
    /// Receiving party.
    pub receiver: String,
    /// Instrument.
    pub instrument: Instrument,
    /// Exclusive bound on the record time, µs.
    pub trec_tgt_us: i64,
}

/// Result of a withdrawal submission.
#[derive(Debug, Clone)]
pub enum WithdrawOutcome {
    /// Sequenced before its bound.
    Committed(Arc<SequencedUpdate>),
    /// Its record time would have been at or after `trecTgt`: never sequenced.
    Expired {
        /// The record time it would have had, µs.
        attempted_record_time_us: i64,
    },
}

/// Counts of a bulk run.
#[derive(Debug, Clone, Default)]
pub struct BulkResult {
    /// Deposits sequenced.
    pub deposits: u32,
    /// Withdrawals sequenced.
    pub withdrawals: u32,
    /// Noise updates sequenced.
    pub noise: u32,
    /// First update sequenced.
    pub first: Option<Arc<SequencedUpdate>>,
    /// Last update sequenced.
    pub last: Option<Arc<SequencedUpdate>>,
}

/// The default instrument: Amulet administered by the DSO party.
pub fn default_instrument(st: &SimState) -> Instrument {
    Instrument {
        admin: st.sync.meta.dso_party.clone(),
        id: "Amulet".into(),
    }
}

/// Parses an amount for a request, as a traffic error.
pub fn amount(s: &str) -> Result<i128, TrafficError> {
    parse_amount(s).map_err(TrafficError::Invalid)
}

fn factory_cid(instrument: &Instrument) -> String {
    format!(
        "00{}ca1221",
        ids::sha256_hex(format!("factory|{}|{}", instrument.admin, instrument.id).as_bytes())
    )
}

fn sequence(
    st: &mut SimState,
    tie: bool,
    body: impl FnOnce(&str, i64) -> UpdateBody,
) -> Result<Arc<SequencedUpdate>, TrafficError> {
    let last = st.sync.last_record_time();
    let rt = st.clock.next_record_time(last, tie);
    let seq = st.sync.len() as u64;
    let update_id = ids::update_id(&st.sync.meta.synchronizer_id, seq, rt);
    let body = body(&update_id, rt);
    let u = st
        .sync
        .append(SequencedUpdate::new(seq, update_id, rt, body))?;
    Ok(u)
}

/// Sequences a deposit.
pub fn deposit(st: &mut SimState, spec: DepositSpec) -> Result<Arc<SequencedUpdate>, TrafficError> {
    if spec.account.is_empty() {
        return Err(TrafficError::Invalid("the deposit account is empty".into()));
    }
    let u = deposit_unflushed(st, spec)?;
    st.sync.flush()?;
    Ok(u)
}

fn deposit_unflushed(
    st: &mut SimState,
    spec: DepositSpec,
) -> Result<Arc<SequencedUpdate>, TrafficError> {
    if spec.same_record_time && st.sync.is_empty() {
        return Err(TrafficError::Invalid(
            "no previous update to share a record time with".into(),
        ));
    }
    let amount = format_amount(spec.amount);
    let factory = factory_cid(&spec.instrument);
    sequence(st, spec.same_record_time, |uid, rt| UpdateBody::Deposit {
        customer: spec.customer,
        account: spec.account,
        input: HoldingRef {
            cid: format!(
                "00{}ca1222",
                ids::sha256_hex(format!("customer-input|{uid}").as_bytes())
            ),
            amount: amount.clone(),
        },
        holding: HoldingRef {
            cid: ids::contract_id(uid, 2),
            amount,
        },
        instrument: spec.instrument,
        factory_cid: factory,
        requested_at_us: rt - 1_000,
    })
}

/// Sequences a withdrawal if its record time is before `trecTgt`.
pub fn withdraw(st: &mut SimState, spec: WithdrawSpec) -> Result<WithdrawOutcome, TrafficError> {
    let out = withdraw_unflushed(st, spec)?;
    st.sync.flush()?;
    Ok(out)
}

fn withdraw_unflushed(
    st: &mut SimState,
    spec: WithdrawSpec,
) -> Result<WithdrawOutcome, TrafficError> {
    if spec.withdrawal_id.is_empty() {
        return Err(TrafficError::Invalid("the withdrawal id is empty".into()));
    }
    if spec.receiver.is_empty() {
        return Err(TrafficError::Invalid("the receiver party is empty".into()));
    }
    // Coin selection: oldest treasury holdings first, until the amount is covered.
    let Some((inputs, total)) = st
        .sync
        .select_treasury_inputs(&spec.instrument, spec.amount)
    else {
        return Err(TrafficError::InsufficientFunds(format!(
            "the treasury holds {} {} but the withdrawal needs {}",
            st.sync.treasury_balance(&spec.instrument),
            spec.instrument.id,
            format_amount(spec.amount)
        )));
    };
    let last = st.sync.last_record_time();
    let now = st.clock.now_us();
    let would_be = last.map_or(now, |l| now.max(l + 1));
    if would_be >= spec.trec_tgt_us {
        return Ok(WithdrawOutcome::Expired {
            attempted_record_time_us: would_be,
        });
    }
    let change = total - spec.amount;
    let factory = factory_cid(&spec.instrument);
    let k = inputs.len() as u32;
    let u = sequence(st, false, |uid, rt| UpdateBody::Withdrawal {
        withdrawal_id: spec.withdrawal_id,
        receiver: spec.receiver,
        amount: format_amount(spec.amount),
        instrument: spec.instrument,
        inputs,
        receiver_holding: HoldingRef {
            cid: ids::contract_id(uid, k + 1),
            amount: format_amount(spec.amount),
        },
        change: (change > 0).then(|| HoldingRef {
            cid: ids::contract_id(uid, k + 2),
            amount: format_amount(change),
        }),
        factory_cid: factory,
        requested_at_us: rt - 1_000,
        execute_before_us: rt + 24 * 3_600_000_000,
        trec_tgt_us: spec.trec_tgt_us,
    })?;
    Ok(WithdrawOutcome::Committed(u))
}

fn noise_unflushed(st: &mut SimState, n: u64) -> Result<Arc<SequencedUpdate>, TrafficError> {
    let [a, b] = noise_parties();
    let (sender, receiver) = if n.is_multiple_of(2) { (a, b) } else { (b, a) };
    let instrument = default_instrument(st);
    let amount = format_amount(SCALE * (1 + (n % 7) as i128));
    let factory = factory_cid(&instrument);
    sequence(st, false, |uid, rt| UpdateBody::Noise {
        sender,
        receiver,
        input: HoldingRef {
            cid: format!(
                "00{}ca1222",
                ids::sha256_hex(format!("noise-input|{uid}").as_bytes())
            ),
            amount: amount.clone(),
        },
        output: HoldingRef {
            cid: ids::contract_id(uid, 2),
            amount,
        },
        instrument,
        factory_cid: factory,
        requested_at_us: rt - 1_000,
    })
}

/// Deposit amount used by bulk traffic.
pub const BULK_DEPOSIT: i128 = 100 * SCALE;
/// Withdrawal amount used by bulk traffic.
pub const BULK_WITHDRAWAL: i128 = SCALE;

/// What to do at step `i` of a bulk run mixing `d` deposits, `w` withdrawals
/// and `n` noise updates evenly.
fn bulk_kind(i: u64, d: u64, w: u64, n: u64, done: [u64; 3]) -> usize {
    let total = (d + w + n).max(1);
    let want = [d, w, n];
    // Pick the kind furthest behind its even share.
    let mut best = 0;
    let mut best_deficit = i128::MIN;
    for k in 0..3 {
        if done[k] >= want[k] {
            continue;
        }
        let share = (want[k] as i128 * (i as i128 + 1)) / total as i128;
        let deficit = share - done[k] as i128;
        if deficit > best_deficit {
            best_deficit = deficit;
            best = k;
        }
    }
    best
}

/// Sequences `deposits` deposits (100 each), `withdrawals` withdrawals (1
/// each) and `noise` noise updates, evenly mixed, in chunks of `chunk`
/// updates (the caller releases its lock between chunks through `between`).
/// With ties enabled every 7th update shares its predecessor's record time.
pub fn bulk(
    st: &mut SimState,
    deposits: u32,
    withdrawals: u32,
    noise: u32,
    ties: bool,
    progress: &mut BulkResult,
    max_steps: u64,
) -> Result<bool, TrafficError> {
    let instrument = default_instrument(st);
    let (d, w, n) = (deposits as u64, withdrawals as u64, noise as u64);
    let mut done = [
        progress.deposits as u64,
        progress.withdrawals as u64,
        progress.noise as u64,
    ];
    if done == [0, 0, 0] {
        let balance = st.sync.treasury_balance_units(&instrument);
        if balance + BULK_DEPOSIT * (d as i128) < BULK_WITHDRAWAL * (w as i128) {
            return Err(TrafficError::InsufficientFunds(format!(
                "{w} withdrawals of 1 need more than the treasury's {} plus {d} deposits of 100",
                format_amount(balance)
            )));
        }
    }
    let mut steps = 0;
    while done.iter().sum::<u64>() < d + w + n && steps < max_steps {
        let i = done.iter().sum::<u64>();
        let mut kind = bulk_kind(i, d, w, n, done);
        let tie = ties && i % 7 == 6 && !st.sync.is_empty();
        if kind == 1 && st.sync.treasury_balance_units(&instrument) < BULK_WITHDRAWAL {
            // Not funded yet: do a deposit first.
            kind = 0;
        }
        let seq = st.sync.len();
        let u = match kind {
            0 => deposit_unflushed(
                st,
                DepositSpec {
                    account: format!("acct-{}", seq % 50),
                    amount: BULK_DEPOSIT,
                    instrument: instrument.clone(),
                    customer: ids::remote_party(&format!("customer-{}", seq % 20)),
                    same_record_time: tie,
                },
            )?,
            1 => {
                let trec_tgt_us = st.synchronizer_time_us() + 3_600_000_000;
                match withdraw_unflushed(
                    st,
                    WithdrawSpec {
                        withdrawal_id: format!("bulk-w-{seq}"),
                        amount: BULK_WITHDRAWAL,
                        receiver: ids::remote_party(&format!("customer-{}", seq % 20)),
                        instrument: instrument.clone(),
                        trec_tgt_us,
                    },
                )? {
                    WithdrawOutcome::Committed(u) => u,
                    WithdrawOutcome::Expired { .. } => {
                        return Err(TrafficError::Io("bulk withdrawal expired".into()));
                    }
                }
            }
            _ => noise_unflushed(st, seq as u64)?,
        };
        if kind == 0 && done[0] >= d {
            // An extra funding deposit beyond the requested count.
        } else {
            done[kind] += 1;
        }
        match kind {
            0 => progress.deposits += 1,
            1 => progress.withdrawals += 1,
            _ => progress.noise += 1,
        }
        if progress.first.is_none() {
            progress.first = Some(u.clone());
        }
        progress.last = Some(u);
        steps += 1;
    }
    st.sync.flush()?;
    Ok(done.iter().sum::<u64>() >= d + w + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_mix_is_even() {
        let mut done = [0u64; 3];
        let mut seq = Vec::new();
        for i in 0..10 {
            let k = bulk_kind(i, 5, 3, 2, done);
            done[k] += 1;
            seq.push(k);
        }
        assert_eq!(done, [5, 3, 2]);
        assert_eq!(seq[0], 0, "deposits lead");
    }
}
