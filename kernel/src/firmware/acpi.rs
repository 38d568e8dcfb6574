//! ACPI tables: finding them from the RSDP and reading the NUMA description (SRAT for
//! which CPUs and memory belong to which proximity domain, SLIT for the distances).
//!
//! Everything is read straight from physical memory through [`crate::memory::phys`],
//! with every length and checksum checked, so this runs before the heap exists and a
//! corrupt table is an error, not a crash. Layouts are from the ACPI 6.5 spec,
//! sections 5.2.5 (RSDP), 5.2.6 (header), 5.2.7/5.2.8 (RSDT/XSDT), 5.2.16 (SRAT) and
//! 5.2.17 (SLIT), and the CPUs to start from the MADT (5.2.12).
//!
//! Hand-written rather than the `acpi` crate: the kernel reads three tables
//! before its heap exists, through its own checked physical window, and the host
//! tests feed it synthetic tables in the same "physical memory".

use crate::memory::numa::{NumaError, NumaNode, NumaTopology};
use crate::memory::{phys, PhysAddr};

/// Most tables remembered from the RSDT/XSDT.
const MAX_TABLES: usize = 64;
/// Size of the common table header.
const HEADER_LEN: u32 = 36;
/// Largest table accepted (sanity bound against corrupt lengths).
const MAX_TABLE_LEN: u32 = 1 << 20;

/// Why the ACPI tables could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// No "RSD PTR " signature, or its checksum is wrong.
    BadRsdp,
    /// A table's checksum or length is wrong.
    BadTable([u8; 4]),
    /// A table lies outside physical memory.
    Unreadable(PhysAddr),
    /// The table is not present.
    NotFound([u8; 4]),
    /// The tables describe a topology the kernel cannot hold.
    Numa(NumaError),
}

impl From<NumaError> for AcpiError {
    fn from(e: NumaError) -> Self {
        AcpiError::Numa(e)
    }
}

fn read<const N: usize>(at: PhysAddr) -> Result<[u8; N], AcpiError> {
    let mut buf = [0u8; N];
    phys::read_bytes(at, &mut buf).map_err(|_| AcpiError::Unreadable(at))?;
    Ok(buf)
}

fn u8_at(at: PhysAddr) -> Result<u8, AcpiError> {
    Ok(read::<1>(at)?[0])
}
fn u32_at(at: PhysAddr) -> Result<u32, AcpiError> {
    Ok(u32::from_le_bytes(read(at)?))
}
fn u64_at(at: PhysAddr) -> Result<u64, AcpiError> {
    Ok(u64::from_le_bytes(read(at)?))
}

/// Sum of `len` bytes at `at`, modulo 256 (valid ACPI structures sum to 0).
fn checksum(at: PhysAddr, len: u32) -> Result<u8, AcpiError> {
    let mut sum = 0u8;
    let mut chunk = [0u8; 64];
    let mut off = 0u32;
    while off < len {
        let n = (len - off).min(64) as usize;
        phys::read_bytes(at + off as u64, &mut chunk[..n])
            .map_err(|_| AcpiError::Unreadable(at))?;
        sum = chunk[..n].iter().fold(sum, |s, &b| s.wrapping_add(b));
        off += n as u32;
    }
    Ok(sum)
}

/// A validated table: where it is and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Its signature, e.g. `*b"SRAT"`.
    pub signature: [u8; 4],
    /// Physical address of its header.
    pub addr: PhysAddr,
    /// Total length including the header.
    pub len: u32,
}

impl Table {
    /// Reads and validates the table header at `addr`.
    fn at(addr: PhysAddr) -> Result<Table, AcpiError> {
        let signature = read::<4>(addr)?;
        let len = u32_at(addr + 4)?;
        if !(HEADER_LEN..=MAX_TABLE_LEN).contains(&len) || checksum(addr, len)? != 0 {
            return Err(AcpiError::BadTable(signature));
        }
        Ok(Table {
            signature,
            addr,
            len,
        })
    }
}

/// The tables listed by the RSDT or XSDT.
#[derive(Debug, Clone)]
pub struct AcpiTables {
    tables: [Option<Table>; MAX_TABLES],
}

impl AcpiTables {
    /// Finds and validates every table, starting from the RSDP at `rsdp`. Tables
    /// with bad checksums are skipped; a bad RSDP or root table is an error.
    pub fn from_rsdp(rsdp: PhysAddr) -> Result<Self, AcpiError> {
        if &read::<8>(rsdp)? != b"RSD PTR " || checksum(rsdp, 20)? != 0 {
            return Err(AcpiError::BadRsdp);
        }
        let revision = u8_at(rsdp + 15)?;
        let (root, entry_len) = if revision >= 2 && checksum(rsdp, 36)? == 0 {
            (u64_at(rsdp + 24)?, 8)
        } else {
            (u32_at(rsdp + 16)? as u64, 4)
        };
        let root = Table::at(PhysAddr(root))?;
        let mut out = AcpiTables {
            tables: [None; MAX_TABLES],
        };
        let count = ((root.len - HEADER_LEN) / entry_len) as usize;
        for i in 0..count.min(MAX_TABLES) {
            let at = root.addr + HEADER_LEN as u64 + (i as u64) * entry_len as u64;
            let addr = if entry_len == 8 {
                u64_at(at)?
            } else {
                u32_at(at)? as u64
            };
            out.tables[i] = Table::at(PhysAddr(addr)).ok();
        }
        Ok(out)
    }

    /// The table with `signature`, if present and valid.
    pub fn find(&self, signature: &[u8; 4]) -> Option<Table> {
        self.tables
            .iter()
            .flatten()
            .find(|t| &t.signature == signature)
            .copied()
    }

    /// Fills `topology` from the SRAT (nodes, their memory and CPUs) and, if present,
    /// the SLIT (distances). Returns the number of nodes found.
    pub fn read_numa(&self, topology: &mut NumaTopology) -> Result<usize, AcpiError> {
        let srat = self.find(b"SRAT").ok_or(AcpiError::NotFound(*b"SRAT"))?;
        read_srat(srat, topology)?;
        if let Some(slit) = self.find(b"SLIT") {
            read_slit(slit, topology)?;
        }
        Ok(topology.nodes().count())
    }
}

/// Most CPUs [`AcpiTables::read_cpus`] lists.
pub const MAX_MADT_CPUS: usize = 64;

/// The CPUs the MADT lists as usable, by local APIC id, the boot CPU's among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MadtCpus {
    ids: [u32; MAX_MADT_CPUS],
    len: usize,
}

impl MadtCpus {
    /// The local APIC ids, in table order.
    pub fn apic_ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }
}

impl AcpiTables {
    /// The processors of the MADT ("APIC") that are enabled or may be brought
    /// online: type 0 (Processor Local APIC, 8 bytes: APIC id at +3, flags at +4)
    /// and type 9 (Processor Local x2APIC, 16 bytes: id at +4, flags at +8); flag
    /// bit 0 is Enabled, bit 1 Online Capable (ACPI 6.5, 5.2.12). Entries start
    /// after the header, the local APIC address and the flags (offset 44).
    pub fn read_cpus(&self) -> Result<MadtCpus, AcpiError> {
        let madt = self.find(b"APIC").ok_or(AcpiError::NotFound(*b"APIC"))?;
        let mut out = MadtCpus {
            ids: [0; MAX_MADT_CPUS],
            len: 0,
        };
        let end = madt.addr + madt.len as u64;
        let mut at = madt.addr + 44;
        while at + 2 <= end {
            let (kind, len) = (u8_at(at)?, u8_at(at + 1)? as u64);
            if len < 2 || at + len > end {
                return Err(AcpiError::BadTable(*b"APIC"));
            }
            let entry = match (kind, len) {
                (0, 8) => Some((u8_at(at + 3)? as u32, u32_at(at + 4)?)),
                (9, 16) => Some((u32_at(at + 4)?, u32_at(at + 8)?)),
                _ => None,
            };
            if let Some((id, flags)) = entry {
                let known = out.apic_ids().contains(&id);
                if flags & 3 != 0 && !known && out.len < MAX_MADT_CPUS {
                    out.ids[out.len] = id;
                    out.len += 1;
                }
            }
            at = at + len;
        }
        Ok(out)
    }
}

fn node(domain: u32) -> NumaNode {
    NumaNode { id: domain }
}

/// SRAT: entries start after the header and 12 reserved bytes.
fn read_srat(srat: Table, topology: &mut NumaTopology) -> Result<(), AcpiError> {
    let end = srat.addr + srat.len as u64;
    let mut at = srat.addr + 48;
    while at + 2 <= end {
        let (kind, len) = (u8_at(at)?, u8_at(at + 1)? as u64);
        if len < 2 || at + len > end {
            return Err(AcpiError::BadTable(*b"SRAT"));
        }
        match (kind, len) {
            (0, 16) => read_apic_affinity(at, topology)?,
            (1, 40) => read_memory_affinity(at, topology)?,
            (2, 24) => read_x2apic_affinity(at, topology)?,
            _ => {} // GICC, ITS, generic initiators: not used here.
        }
        at = at + len;
    }
    Ok(())
}

/// Type 0, Processor Local APIC Affinity: domain bits 0..8 at +2, 8..32 at +9..12.
fn read_apic_affinity(at: PhysAddr, t: &mut NumaTopology) -> Result<(), AcpiError> {
    if u32_at(at + 4)? & 1 == 0 {
        return Ok(()); // disabled entry
    }
    let hi = read::<3>(at + 9)?;
    let domain = u8_at(at + 2)? as u32 | u32::from_le_bytes([0, hi[0], hi[1], hi[2]]);
    t.add_node(node(domain))?;
    t.add_cpu(u8_at(at + 3)? as u32, node(domain))?;
    Ok(())
}

/// Type 1, Memory Affinity: domain at +2, base at +8, length at +16, flags at +28.
fn read_memory_affinity(at: PhysAddr, t: &mut NumaTopology) -> Result<(), AcpiError> {
    let (flags, len) = (u32_at(at + 28)?, u64_at(at + 16)?);
    if flags & 1 == 0 || len == 0 {
        return Ok(());
    }
    let domain = u32_at(at + 2)?;
    t.add_node(node(domain))?;
    t.add_memory(node(domain), PhysAddr(u64_at(at + 8)?), len)?;
    Ok(())
}

/// Type 2, Processor Local x2APIC Affinity: domain at +4, x2APIC id at +8, flags +12.
fn read_x2apic_affinity(at: PhysAddr, t: &mut NumaTopology) -> Result<(), AcpiError> {
    if u32_at(at + 12)? & 1 == 0 {
        return Ok(());
    }
    let domain = u32_at(at + 4)?;
    t.add_node(node(domain))?;
    t.add_cpu(u32_at(at + 8)?, node(domain))?;
    Ok(())
}

/// SLIT: locality count at +36, then an n x n byte matrix.
fn read_slit(slit: Table, t: &mut NumaTopology) -> Result<(), AcpiError> {
    let n = u64_at(slit.addr + 36)?;
    if n.checked_mul(n).and_then(|nn| nn.checked_add(44)) > Some(slit.len as u64) {
        return Err(AcpiError::BadTable(*b"SLIT"));
    }
    for i in 0..n {
        for j in 0..n {
            let d = u8_at(slit.addr + 44 + i * n + j)?;
            // Localities the SRAT did not mention have no node: skip them.
            if let (Some(_), Some(_)) = (
                t.distance(node(i as u32), node(i as u32)),
                t.distance(node(j as u32), node(j as u32)),
            ) {
                t.set_distance(node(i as u32), node(j as u32), d)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
