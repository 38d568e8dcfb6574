//! The kernel heap budget: kernel memory that user programs make the kernel hold,
//! charged to the process that made it.
//!
//! Some kernel objects exist in numbers a user program chooses: its memory regions
//! (VMAs), the slots of its fd table, the bytes its pipes buffer, its threads and
//! its child processes. Each is charged to an [`Account`] before it is made; the
//! [`Charge`] it keeps goes back when the object goes (on drop). Two bounds hold at
//! every moment:
//! * **the budget**: all accounts of a [`Budget`] together hold at most its `limit`
//!   bytes, so what users make never takes the heap the kernel itself needs;
//! * **the share**: one account holds at most `share` bytes (half the limit, by
//!   default), so no single process can take the budget from the others.
//!
//! A refused charge changes nothing ([`OverBudget`]); the call that wanted the object
//! fails as Linux fails when kernel memory runs out (ENOMEM for mmap, fork, clone
//! and pipe writes; EMFILE/ENOMEM for the fd table as the caller says).
//!
//! Costs are estimates of the heap bytes an object holds (its struct and its share
//! of the container it sits in): the budget bounds growth, it is not an exact ledger
//! of the heap. Both counters are atomics, so a charge can be taken or returned
//! under any lock (a pipe's, an address space's) without a lock order.

#![deny(unsafe_code)]

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

/// A charge was refused: the account's share or the budget would be exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

/// Bytes of kernel heap that user-made objects may hold, in total and per account.
#[derive(Debug)]
pub struct Budget {
    limit: AtomicU64,
    share: AtomicU64,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `limit` bytes, of which one account may hold half.
    pub fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit: AtomicU64::new(limit),
            share: AtomicU64::new(limit / 2),
            used: AtomicU64::new(0),
        })
    }

    /// A budget without bounds (a table no one has given one yet).
    pub fn unlimited() -> Arc<Budget> {
        Budget::new(u64::MAX)
    }

    /// Sets the total and the share of one account from now on (charges already
    /// held stay, even above the new bounds).
    pub fn set_limits(&self, limit: u64, share: u64) {
        self.limit.store(limit, Ordering::Relaxed);
        self.share.store(share.min(limit), Ordering::Relaxed);
    }

    /// Bytes charged by all accounts now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The total bound.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// The bound on one account.
    pub fn share(&self) -> u64 {
        self.share.load(Ordering::Relaxed)
    }

    /// A new, empty account under this budget.
    pub fn account(self: &Arc<Self>) -> Arc<Account> {
        Arc::new(Account {
            budget: self.clone(),
            used: AtomicU64::new(0),
        })
    }
}

/// Adds `bytes` to `counter` if the sum stays at most `bound`.
fn add_bounded(counter: &AtomicU64, bytes: u64, bound: u64) -> Result<(), OverBudget> {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
            u.checked_add(bytes).filter(|&n| n <= bound)
        })
        .map(|_| ())
        .map_err(|_| OverBudget)
}

/// What one process (or one owner) holds of a [`Budget`].
#[derive(Debug)]
pub struct Account {
    budget: Arc<Budget>,
    used: AtomicU64,
}

impl Account {
    /// Takes `bytes` from the share and the budget, or changes nothing.
    fn take(&self, bytes: u64) -> Result<(), OverBudget> {
        add_bounded(&self.used, bytes, self.budget.share())?;
        add_bounded(&self.budget.used, bytes, self.budget.limit())
            .inspect_err(|_| self.give(bytes, 0))
    }

    /// Gives `bytes` back to the share and (`to_budget` more) to the budget.
    fn give(&self, bytes: u64, to_budget: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        if to_budget > 0 {
            self.budget.used.fetch_sub(to_budget, Ordering::AcqRel);
        }
    }

    /// A charge of `bytes` (OverBudget, with nothing taken, if it does not fit).
    pub fn charge(self: &Arc<Self>, bytes: u64) -> Result<Charge, OverBudget> {
        self.take(bytes)?;
        Ok(Charge {
            account: self.clone(),
            bytes,
        })
    }

    /// An empty charge, to grow later.
    pub fn empty_charge(self: &Arc<Self>) -> Charge {
        Charge {
            account: self.clone(),
            bytes: 0,
        }
    }

    /// Bytes this account holds now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The budget it draws from.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }
}

/// Bytes an object holds of an account; given back when dropped.
#[derive(Debug)]
pub struct Charge {
    account: Arc<Account>,
    bytes: u64,
}

impl Charge {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The account charged.
    pub fn account(&self) -> &Arc<Account> {
        &self.account
    }

    /// Holds `more` bytes more, or changes nothing.
    pub fn grow(&mut self, more: u64) -> Result<(), OverBudget> {
        self.account.take(more)?;
        self.bytes += more;
        Ok(())
    }

    /// Holds `less` bytes less (at most all it holds).
    pub fn shrink(&mut self, less: u64) {
        let less = less.min(self.bytes);
        self.account.give(less, less);
        self.bytes -= less;
    }

    /// Holds exactly `bytes`: grows (or fails, changing nothing) or shrinks.
    pub fn set(&mut self, bytes: u64) -> Result<(), OverBudget> {
        match bytes.checked_sub(self.bytes) {
            Some(more) => self.grow(more),
            None => {
                self.shrink(self.bytes - bytes);
                Ok(())
            }
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.account.give(self.bytes, self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_and_budget_bound_charges_and_drops_give_back() {
        let b = Budget::new(1000);
        let (x, y, z) = (b.account(), b.account(), b.account());
        let c1 = x.charge(400).unwrap();
        assert_eq!(x.charge(101).map(|_| ()), Err(OverBudget), "share is 500");
        let mut c2 = y.charge(500).unwrap();
        assert_eq!(z.charge(200).map(|_| ()), Err(OverBudget), "budget is full");
        assert_eq!((x.used(), y.used(), z.used(), b.used()), (400, 500, 0, 900));
        c2.shrink(200);
        let c3 = z.charge(200).unwrap();
        assert_eq!(c2.set(600), Err(OverBudget));
        assert_eq!(c2.bytes(), 300, "a refused set changes nothing");
        drop((c1, c2, c3));
        assert_eq!((x.used(), y.used(), z.used(), b.used()), (0, 0, 0, 0));
    }
}
