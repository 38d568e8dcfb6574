//! The errors of page-table operations: one enum per operation, every variant
//! documented, with `From` conversions from the lower layers (frame allocator,
//! physical window) and between operations where one is built on another.

use crate::memory::frame_allocator::FrameError;
use crate::memory::phys::OutsideWindow;
use crate::memory::{PageSize, PhysAddr, PhysFrame};

/// Why [`map_to`](super::PageTableMapper::map_to) failed. A failed map changes
/// nothing: tables it created on the way are freed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapToError {
    /// The page is already mapped, to this frame (the start of its leaf).
    PageAlreadyMapped(PhysFrame),
    /// A bigger page of `size` already covers the page.
    ParentEntryHugePage {
        /// Size of the leaf in the way.
        size: PageSize,
    },
    /// A huge page was requested where a table of smaller pages already exists.
    TableInTheWay,
    /// The frame is not aligned to the page size.
    MisalignedFrame {
        /// The frame given.
        frame: PhysFrame,
        /// The page size it must be aligned to.
        size: PageSize,
    },
    /// The frame lies above what the entry format can address.
    FrameOutOfRange(PhysFrame),
    /// No frame for an intermediate table.
    FrameAllocationFailed,
    /// A table on the walk is outside physical memory or holds an entry this module
    /// never writes (a corrupt table or a bogus root).
    CorruptTable(PhysAddr),
}

/// Why [`unmap`](super::PageTableMapper::unmap) failed; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmapError {
    /// Nothing maps the page.
    PageNotMapped,
    /// The address is covered by a bigger page of `size`; unmap that page instead.
    ParentEntryHugePage {
        /// Size of the leaf that covers the address.
        size: PageSize,
    },
    /// A huge page was named, but the range is mapped by a table of smaller pages.
    TableInTheWay,
    /// A table on the walk is outside physical memory or corrupt.
    CorruptTable(PhysAddr),
}

/// Why [`update_flags`](super::PageTableMapper::update_flags) failed; nothing was
/// changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagUpdateError {
    /// Nothing maps the page.
    PageNotMapped,
    /// The address is covered by a bigger page of `size`.
    ParentEntryHugePage {
        /// Size of the leaf that covers the address.
        size: PageSize,
    },
    /// A huge page was named, but the range is mapped by a table of smaller pages.
    TableInTheWay,
    /// A table on the walk is outside physical memory or corrupt.
    CorruptTable(PhysAddr),
}

/// Why [`lookup`](super::PageTable::lookup) found no translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranslateError {
    /// Nothing maps the address.
    PageNotMapped,
    /// A table on the walk is outside physical memory or corrupt.
    CorruptTable(PhysAddr),
}

impl From<FrameError> for MapToError {
    fn from(_: FrameError) -> Self {
        MapToError::FrameAllocationFailed
    }
}

macro_rules! from_outside_window {
    ($($t:ty),*) => {$(
        impl From<OutsideWindow> for $t {
            fn from(e: OutsideWindow) -> Self {
                <$t>::CorruptTable(e.0)
            }
        }
    )*};
}
from_outside_window!(MapToError, UnmapError, FlagUpdateError, TranslateError);

/// The failures every walk to an existing leaf can meet, shared by unmap and
/// update_flags (and turned into each one's own enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FindError {
    NotMapped,
    Huge(PageSize),
    TableInTheWay,
    Corrupt(PhysAddr),
}

impl From<OutsideWindow> for FindError {
    fn from(e: OutsideWindow) -> Self {
        FindError::Corrupt(e.0)
    }
}

impl From<FindError> for UnmapError {
    fn from(e: FindError) -> Self {
        match e {
            FindError::NotMapped => UnmapError::PageNotMapped,
            FindError::Huge(size) => UnmapError::ParentEntryHugePage { size },
            FindError::TableInTheWay => UnmapError::TableInTheWay,
            FindError::Corrupt(a) => UnmapError::CorruptTable(a),
        }
    }
}

impl From<FindError> for FlagUpdateError {
    fn from(e: FindError) -> Self {
        match e {
            FindError::NotMapped => FlagUpdateError::PageNotMapped,
            FindError::Huge(size) => FlagUpdateError::ParentEntryHugePage { size },
            FindError::TableInTheWay => FlagUpdateError::TableInTheWay,
            FindError::Corrupt(a) => FlagUpdateError::CorruptTable(a),
        }
    }
}

impl From<TranslateError> for UnmapError {
    fn from(e: TranslateError) -> Self {
        match e {
            TranslateError::PageNotMapped => UnmapError::PageNotMapped,
            TranslateError::CorruptTable(a) => UnmapError::CorruptTable(a),
        }
    }
}

impl From<TranslateError> for FlagUpdateError {
    fn from(e: TranslateError) -> Self {
        match e {
            TranslateError::PageNotMapped => FlagUpdateError::PageNotMapped,
            TranslateError::CorruptTable(a) => FlagUpdateError::CorruptTable(a),
        }
    }
}
