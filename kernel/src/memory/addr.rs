//! Typed addresses: [`PhysAddr`], [`VirtAddr`], the 4 KiB [`PhysFrame`] and the
//! [`Page`] (4 KiB, 2 MiB or 1 GiB).
//!
//! Invariants:
//! * a `VirtAddr` is always canonical (bits 48..64 copy bit 47), on x86_64 and on
//!   ARM with 48-bit virtual addresses alike;
//! * a `PhysFrame` always starts on a 4 KiB boundary;
//! * a `Page` always starts on a boundary of its own size.
//!
//! `PhysAddr` is a plain number (its field is public, as the seed API requires): any
//! u64 names a physical address; whether RAM lives there is the frame allocator's
//! business.
#![deny(unsafe_code)]

use core::fmt;
use core::ops::{Add, Sub};

/// Size of the base page and of a [`PhysFrame`].
pub const PAGE_SIZE: u64 = 4096;

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrError {
    /// The virtual address is not canonical (bits 48..64 do not copy bit 47).
    NotCanonical(u64),
    /// The address is not aligned to the required boundary.
    Unaligned {
        /// The offending address.
        addr: u64,
        /// The boundary it should sit on.
        align: u64,
    },
}

/// A physical memory address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PhysAddr(pub u64);

impl PhysAddr {
    /// Wraps a physical address.
    pub const fn new(addr: u64) -> Self {
        PhysAddr(addr)
    }
    /// The address as a number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// Whether the address is a multiple of `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }
    /// Rounds down to a multiple of `align` (a power of two).
    pub const fn align_down(self, align: u64) -> Self {
        PhysAddr(self.0 & !(align - 1))
    }
    /// Rounds up to a multiple of `align` (a power of two); saturates at the top.
    pub const fn align_up(self, align: u64) -> Self {
        match self.0.checked_add(align - 1) {
            Some(v) => PhysAddr(v & !(align - 1)),
            None => PhysAddr(!(align - 1)),
        }
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysAddr({:#x})", self.0)
    }
}

impl Add<u64> for PhysAddr {
    type Output = PhysAddr;
    fn add(self, rhs: u64) -> PhysAddr {
        PhysAddr(self.0 + rhs)
    }
}

impl Sub<PhysAddr> for PhysAddr {
    type Output = u64;
    fn sub(self, rhs: PhysAddr) -> u64 {
        self.0 - rhs.0
    }
}

/// A canonical virtual memory address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct VirtAddr(u64);

impl VirtAddr {
    /// Wraps a virtual address.
    ///
    /// # Panics
    /// If `addr` is not canonical. This is for constants and addresses the kernel
    /// computed itself; anything that comes from a user goes through
    /// [`VirtAddr::try_new`].
    pub const fn new(addr: u64) -> Self {
        match Self::try_new(addr) {
            Ok(v) => v,
            Err(_) => panic!("VirtAddr::new: address is not canonical"),
        }
    }

    /// Wraps a virtual address, or says why it is not one.
    pub const fn try_new(addr: u64) -> Result<Self, AddrError> {
        if Self::new_truncate(addr).0 == addr {
            Ok(VirtAddr(addr))
        } else {
            Err(AddrError::NotCanonical(addr))
        }
    }

    /// Makes `addr` canonical by sign-extending bit 47.
    pub const fn new_truncate(addr: u64) -> Self {
        VirtAddr((((addr << 16) as i64) >> 16) as u64)
    }

    /// The address as a number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// Whether the address is a multiple of `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }
    /// Rounds down to a multiple of `align` (a power of two).
    pub const fn align_down(self, align: u64) -> Self {
        VirtAddr(self.0 & !(align - 1))
    }
    /// Rounds up to a multiple of `align`, or `None` if that leaves the canonical range.
    pub fn align_up(self, align: u64) -> Option<Self> {
        let v = self.0.checked_add(align - 1)? & !(align - 1);
        Self::try_new(v).ok()
    }
    /// Offset within a 4 KiB page.
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }
    /// The 9-bit table index used at page-table `level` (0 = the 4 KiB level,
    /// 3 = the root of a 4-level table).
    pub const fn table_index(self, level: usize) -> usize {
        ((self.0 >> (12 + 9 * level)) & 0x1ff) as usize
    }
    /// `self + bytes`, or `None` on overflow or when the result is not canonical.
    pub fn checked_add(self, bytes: u64) -> Option<Self> {
        Self::try_new(self.0.checked_add(bytes)?).ok()
    }
    /// Address as a pointer (for the direct map and the host window).
    pub const fn as_ptr<T>(self) -> *const T {
        self.0 as *const T
    }
    /// Address as a mutable pointer.
    pub const fn as_mut_ptr<T>(self) -> *mut T {
        self.0 as *mut T
    }
}

impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtAddr({:#x})", self.0)
    }
}

/// A 4 KiB frame of physical memory.
///
/// Frames are plain values: the [frame allocator](super::frame_allocator) owns the
/// truth about which are free (the seed API uses a frame's address after the value
/// is gone, so a frame cannot free itself on drop).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysFrame {
    /// First byte of the frame; always 4 KiB aligned.
    pub start_address: PhysAddr,
}

impl PhysFrame {
    /// The frame that contains `addr`.
    pub const fn containing_address(addr: PhysAddr) -> Self {
        PhysFrame {
            start_address: addr.align_down(PAGE_SIZE),
        }
    }
    /// The frame that starts at `addr`, or an error if `addr` is not 4 KiB aligned.
    pub const fn from_start_address(addr: PhysAddr) -> Result<Self, AddrError> {
        if addr.is_aligned(PAGE_SIZE) {
            Ok(PhysFrame {
                start_address: addr,
            })
        } else {
            Err(AddrError::Unaligned {
                addr: addr.0,
                align: PAGE_SIZE,
            })
        }
    }
    /// The frame with number `pfn` (address / 4096).
    pub const fn from_number(pfn: u64) -> Self {
        PhysFrame {
            start_address: PhysAddr(pfn * PAGE_SIZE),
        }
    }
    /// The frame number (address / 4096).
    pub const fn number(self) -> u64 {
        self.start_address.0 / PAGE_SIZE
    }
    /// First byte of the frame.
    pub const fn start_address(self) -> PhysAddr {
        self.start_address
    }
}

impl fmt::Debug for PhysFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysFrame({:#x})", self.start_address.0)
    }
}

/// The sizes a page (and a leaf mapping) can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB, a level-0 (x86 PT / ARM level 3) entry.
    Size4KiB,
    /// 2 MiB, a level-1 (x86 PD / ARM level 2) block.
    Size2MiB,
    /// 1 GiB, a level-2 (x86 PDPT / ARM level 1) block.
    Size1GiB,
}

impl PageSize {
    /// Size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4KiB => 1 << 12,
            PageSize::Size2MiB => 1 << 21,
            PageSize::Size1GiB => 1 << 30,
        }
    }
    /// The page-table level a leaf of this size lives at (0 = 4 KiB level).
    pub const fn level(self) -> usize {
        match self {
            PageSize::Size4KiB => 0,
            PageSize::Size2MiB => 1,
            PageSize::Size1GiB => 2,
        }
    }
    /// The page size whose leaves live at `level`, if any.
    pub const fn at_level(level: usize) -> Option<Self> {
        match level {
            0 => Some(PageSize::Size4KiB),
            1 => Some(PageSize::Size2MiB),
            2 => Some(PageSize::Size1GiB),
            _ => None,
        }
    }
}

/// A virtual page: a canonical start address aligned to its size.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Page {
    start: VirtAddr,
    size: PageSize,
}

impl Page {
    /// The 4 KiB page that contains `addr`.
    pub const fn containing_address(addr: VirtAddr) -> Self {
        Page {
            start: addr.align_down(PAGE_SIZE),
            size: PageSize::Size4KiB,
        }
    }
    /// The page of `size` that contains `addr`.
    pub const fn containing_address_sized(addr: VirtAddr, size: PageSize) -> Self {
        Page {
            start: addr.align_down(size.bytes()),
            size,
        }
    }
    /// The page of `size` starting at `addr`, or an error if `addr` is misaligned.
    pub const fn from_start_address(addr: VirtAddr, size: PageSize) -> Result<Self, AddrError> {
        if addr.is_aligned(size.bytes()) {
            Ok(Page { start: addr, size })
        } else {
            Err(AddrError::Unaligned {
                addr: addr.as_u64(),
                align: size.bytes(),
            })
        }
    }
    /// First byte of the page.
    pub const fn start_address(self) -> VirtAddr {
        self.start
    }
    /// The page's size.
    pub const fn size(self) -> PageSize {
        self.size
    }
    /// The next page of the same size, or `None` past the canonical range.
    pub fn next(self) -> Option<Self> {
        Some(Page {
            start: self.start.checked_add(self.size.bytes())?,
            size: self.size,
        })
    }
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Page({:#x}, {:?})", self.start.as_u64(), self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_checks() {
        assert!(VirtAddr::try_new(0x0000_7fff_ffff_ffff).is_ok());
        assert!(VirtAddr::try_new(0xffff_8000_0000_0000).is_ok());
        assert_eq!(
            VirtAddr::try_new(0x0000_8000_0000_0000),
            Err(AddrError::NotCanonical(0x0000_8000_0000_0000))
        );
        assert_eq!(
            VirtAddr::new_truncate(0x0000_8000_0000_0000).as_u64(),
            0xffff_8000_0000_0000
        );
        assert_eq!(VirtAddr::new(0x7fff_ffff_f000).checked_add(0x1000), None);
    }

    #[test]
    #[should_panic]
    fn new_panics_on_non_canonical() {
        let _ = VirtAddr::new(1 << 47);
    }

    #[test]
    fn frame_alignment() {
        assert!(PhysFrame::from_start_address(PhysAddr(0x1001)).is_err());
        let f = PhysFrame::containing_address(PhysAddr(0x1fff));
        assert_eq!(f.start_address, PhysAddr(0x1000));
        assert_eq!(f.number(), 1);
        assert_eq!(PhysFrame::from_number(1), f);
    }

    #[test]
    fn page_alignment_and_indices() {
        let a = VirtAddr::new(0x0000_7f12_3456_7abc);
        let p = Page::containing_address(a);
        assert_eq!(p.start_address().as_u64(), 0x0000_7f12_3456_7000);
        assert!(Page::from_start_address(VirtAddr::new(0x20_1000), PageSize::Size2MiB).is_err());
        assert!(Page::from_start_address(VirtAddr::new(0x20_0000), PageSize::Size2MiB).is_ok());
        assert_eq!(a.table_index(0), (0x7f12_3456_7abc >> 12) & 0x1ff);
        assert_eq!(a.table_index(3), (0x7f12_3456_7abc >> 39) & 0x1ff);
        assert_eq!(PhysAddr(5).align_up(4096), PhysAddr(4096));
        assert_eq!(PhysAddr(u64::MAX).align_up(4096), PhysAddr(!4095));
    }
}
