//! Memory management: addresses, physical frames, page tables, the heap and NUMA.
//!
//! Layering, bottom up: [`addr`] (typed addresses) -> [`phys`] (the window through
//! which the kernel touches physical memory) -> [`frame_allocator`] (who owns which
//! frame) -> [`paging`] (page tables built from frames) -> [`heap`] and
//! [`address_space`] (users of both).

pub mod addr;
pub mod address_space;
pub mod frame_allocator;
#[allow(unsafe_code)]
pub mod heap;
pub mod kmem;
pub mod memmap;
pub mod numa;
pub mod paging;
#[allow(unsafe_code)]
pub mod phys;
pub mod region;

pub use addr::{AddrError, Page, PageSize, PhysAddr, PhysFrame, VirtAddr, PAGE_SIZE};
pub use region::MemoryRegion;
