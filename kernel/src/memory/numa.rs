//! NUMA topology (being written).
/// A NUMA node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NumaNode {
    /// The node's number, as the firmware (ACPI SRAT proximity domain / DT) gives it.
    pub id: u32,
}
