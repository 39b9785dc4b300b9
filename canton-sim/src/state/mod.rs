//! The simulator's persistent state, split the way a real deployment splits it:
//! the synchronizer's history (survives a node restore) and the participant's
//! local state (what a backup holds).

pub mod dars;
pub mod participant;
pub mod synchronizer;
