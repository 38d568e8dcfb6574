//! NUMA discovery on x86_64: the ACPI SRAT and SLIT, found through the RSDP address
//! the PVH start info carries. Without them (e.g. QEMU microvm, which has no ACPI)
//! the machine is one node, node 0.

use super::pvh::BootInfo;
use crate::firmware::acpi::AcpiTables;
use crate::memory::numa::{NumaTopology, NUMA_TOPOLOGY};

/// Reads the firmware's NUMA description into [`NUMA_TOPOLOGY`] (which publishes
/// it to the frame allocator). Returns the number of nodes found (0 if the firmware
/// describes none).
pub fn discover(info: &BootInfo) -> usize {
    if info.rsdp.0 == 0 {
        return 0;
    }
    let mut found = NumaTopology::new();
    let nodes = match AcpiTables::from_rsdp(info.rsdp).and_then(|t| t.read_numa(&mut found)) {
        Ok(n) => n,
        // No SRAT (e.g. microvm's ACPI tables): one node, said once by the caller.
        Err(crate::firmware::acpi::AcpiError::NotFound(_)) => return 0,
        Err(e) => {
            crate::println!("numa: no usable SRAT ({e:?}); one node");
            return 0;
        }
    };
    *NUMA_TOPOLOGY.lock() = found;
    nodes
}

/// A copy of the topology, for splitting memory regions by node while the frame
/// allocator is locked (the topology lock must not be taken then: dropping its guard
/// takes the allocator's lock).
pub fn snapshot() -> NumaTopology {
    NUMA_TOPOLOGY.lock().clone()
}
