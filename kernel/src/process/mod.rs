//! Processes and threads (being written).

pub mod scheduler;

/// A thread id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tid(pub u32);
