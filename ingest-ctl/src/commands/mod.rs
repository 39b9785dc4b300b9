//! One module per subcommand; [`desired`] is the state change `stop` and
//! `start` share.

pub mod desired;
pub mod last;
pub mod migrate;
pub mod set_offset;
pub mod start;
pub mod status;
pub mod stop;
