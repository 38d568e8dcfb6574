//! What the firmware tells the kernel about the machine: ACPI tables (x86_64; SRAT and
//! SLIT for NUMA).

pub mod acpi;
pub mod devicetree;
