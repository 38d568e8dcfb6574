//! What the firmware tells the kernel about the machine: ACPI tables (x86_64; SRAT and
//! SLIT for NUMA).
#![deny(unsafe_code)]

pub mod acpi;
pub mod devicetree;
