//! [`PageFlags`]: what a mapping allows, independent of the entry format.
//!
//! Each format ([`super::x86_64`], [`super::arm_lpae`]) translates these flags into
//! its own bits and back. The numeric values happen to equal the x86_64 bit
//! positions (so that format's translation is a mask), but callers must not rely on
//! that: they are just names.

use bitflags::bitflags;

bitflags! {
    /// Permissions and attributes of a mapping.
    ///
    /// `PRESENT` is implied by `map_to` and `update_flags` (a mapping is always
    /// present; to remove one, unmap it). `HUGE` is ignored on input (the size comes
    /// from the [`Page`](super::Page)) and reported by lookups for 2 MiB and 1 GiB
    /// leaves.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct PageFlags: u64 {
        /// The mapping is valid.
        const PRESENT = 1 << 0;
        /// Writes are allowed (otherwise read-only).
        const WRITABLE = 1 << 1;
        /// User mode (ring 3 / EL0) may access the page.
        const USER = 1 << 2;
        /// Write-through caching.
        const WRITE_THROUGH = 1 << 3;
        /// Caching disabled (device memory on ARM).
        const NO_CACHE = 1 << 4;
        /// The page has been accessed (set by the MMU on x86_64; always set on ARM).
        const ACCESSED = 1 << 5;
        /// The page has been written (set by the MMU on x86_64; software on ARM).
        const DIRTY = 1 << 6;
        /// The leaf is a 2 MiB or 1 GiB page (output only).
        const HUGE = 1 << 7;
        /// The translation is shared by all address spaces (not flushed on switch).
        const GLOBAL = 1 << 8;
        /// Free for the operating system (e.g. copy-on-write marker).
        const SOFTWARE_0 = 1 << 9;
        /// Free for the operating system.
        const SOFTWARE_1 = 1 << 10;
        /// Free for the operating system.
        const SOFTWARE_2 = 1 << 11;
        /// Instructions may not be fetched from the page.
        const NO_EXECUTE = 1 << 63;
    }
}
