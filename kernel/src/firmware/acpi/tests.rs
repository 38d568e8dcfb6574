use super::*;
use crate::memory::phys::{host_fresh_range, write_bytes};

/// Fixes the checksum byte at `at` so that `bytes` sums to zero.
fn seal(bytes: &mut [u8], at: usize) {
    bytes[at] = 0;
    let sum = bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    bytes[at] = 0u8.wrapping_sub(sum);
}

fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 36];
    t[..4].copy_from_slice(sig);
    t.extend_from_slice(body);
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    seal(&mut t, 9);
    t
}

fn apic(domain: u8, apic_id: u8) -> Vec<u8> {
    let mut e = vec![0u8; 16];
    e[0] = 0;
    e[1] = 16;
    e[2] = domain;
    e[3] = apic_id;
    e[4] = 1;
    e
}

fn memory(domain: u32, base: u64, len: u64, enabled: bool) -> Vec<u8> {
    let mut e = vec![0u8; 40];
    e[0] = 1;
    e[1] = 40;
    e[2..6].copy_from_slice(&domain.to_le_bytes());
    e[8..16].copy_from_slice(&base.to_le_bytes());
    e[16..24].copy_from_slice(&len.to_le_bytes());
    e[28] = enabled as u8;
    e
}

/// Lays out RSDP (revision 2) + XSDT + the given tables in fresh memory.
fn install(tables: &[Vec<u8>]) -> PhysAddr {
    let base = host_fresh_range(1 << 20);
    let mut at = base + 0x1000;
    let mut addrs = Vec::new();
    for t in tables {
        write_bytes(at, t).unwrap();
        addrs.push(at.0);
        at = at + 0x1000;
    }
    let body: Vec<u8> = addrs.iter().flat_map(|a| a.to_le_bytes()).collect();
    let xsdt = table(b"XSDT", &body);
    write_bytes(at, &xsdt).unwrap();
    let mut rsdp = vec![0u8; 36];
    rsdp[..8].copy_from_slice(b"RSD PTR ");
    rsdp[15] = 2;
    rsdp[20..24].copy_from_slice(&36u32.to_le_bytes());
    rsdp[24..32].copy_from_slice(&at.0.to_le_bytes());
    seal(&mut rsdp[..20], 8);
    seal(&mut rsdp, 32);
    write_bytes(base, &rsdp).unwrap();
    base
}

fn srat(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut body = vec![0u8; 12];
    body[0] = 1;
    for e in entries {
        body.extend_from_slice(e);
    }
    table(b"SRAT", &body)
}

fn slit(matrix: &[&[u8]]) -> Vec<u8> {
    let mut body = (matrix.len() as u64).to_le_bytes().to_vec();
    for row in matrix {
        body.extend_from_slice(row);
    }
    table(b"SLIT", &body)
}

#[test]
fn two_nodes_from_srat_and_slit() {
    let rsdp = install(&[
        table(b"APIC", &[0u8; 8]),
        srat(&[
            apic(0, 0),
            apic(1, 1),
            memory(0, 0, 0xa0000, true),
            memory(0, 0x100000, 0x7f00000, true),
            memory(1, 0x8000000, 0x8000000, true),
            memory(1, 0x1_0000_0000, 0, true),
            memory(2, 0x2_0000_0000, 0x1000, false),
        ]),
        slit(&[&[10, 21], &[21, 10]]),
    ]);
    let acpi = AcpiTables::from_rsdp(rsdp).unwrap();
    assert!(acpi.find(b"APIC").is_some());
    let mut t = NumaTopology::new();
    assert_eq!(
        acpi.read_numa(&mut t).unwrap(),
        2,
        "disabled node 2 is ignored"
    );
    assert_eq!(t.distance(node(0), node(1)), Some(21));
    assert_eq!(t.distance(node(1), node(1)), Some(10));
    assert_eq!(t.memory_of(node(0)).count(), 2);
    assert_eq!(t.node_of_addr(PhysAddr(0x9000000)), Some(node(1)));
    assert_eq!(t.node_of_cpu(1), node(1));
    assert_eq!(t.cpus_of(node(0)).collect::<Vec<_>>(), vec![0]);
}

#[test]
fn corrupt_tables_are_errors() {
    let base = host_fresh_range(1 << 20);
    assert_eq!(AcpiTables::from_rsdp(base).unwrap_err(), AcpiError::BadRsdp);
    // A good RSDP whose SRAT has a bad checksum: SRAT is skipped, so "not found".
    let mut bad = srat(&[apic(0, 0)]);
    bad[40] ^= 0xff;
    let rsdp = install(&[bad]);
    let acpi = AcpiTables::from_rsdp(rsdp).unwrap();
    let mut t = NumaTopology::new();
    assert_eq!(
        acpi.read_numa(&mut t).unwrap_err(),
        AcpiError::NotFound(*b"SRAT")
    );
    // An entry whose length runs past the table.
    let mut e = apic(0, 0);
    e[1] = 200;
    let rsdp = install(&[srat(&[e])]);
    let acpi = AcpiTables::from_rsdp(rsdp).unwrap();
    assert_eq!(
        acpi.read_numa(&mut t).unwrap_err(),
        AcpiError::BadTable(*b"SRAT")
    );
    // A SLIT that claims more localities than it holds.
    let mut s = slit(&[&[10]]);
    s[36] = 50;
    seal(&mut s, 9);
    let rsdp = install(&[srat(&[apic(0, 0)]), s]);
    let acpi = AcpiTables::from_rsdp(rsdp).unwrap();
    assert_eq!(
        acpi.read_numa(&mut t).unwrap_err(),
        AcpiError::BadTable(*b"SLIT")
    );
    // A root pointer outside physical memory.
    assert!(matches!(
        AcpiTables::from_rsdp(PhysAddr(crate::memory::phys::limit())),
        Err(AcpiError::Unreadable(_))
    ));
}

/// A MADT with the local APIC address and flags, then `entries`.
fn madt(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut body = 0xfee0_0000u32.to_le_bytes().to_vec();
    body.extend_from_slice(&1u32.to_le_bytes());
    for e in entries {
        body.extend_from_slice(e);
    }
    table(b"APIC", &body)
}

fn local_apic(apic_id: u8, flags: u32) -> Vec<u8> {
    let mut e = vec![0, 8, apic_id, apic_id];
    e.extend_from_slice(&flags.to_le_bytes());
    e
}

fn local_x2apic(apic_id: u32, flags: u32) -> Vec<u8> {
    let mut e = vec![9, 16, 0, 0];
    e.extend_from_slice(&apic_id.to_le_bytes());
    e.extend_from_slice(&flags.to_le_bytes());
    e.extend_from_slice(&apic_id.to_le_bytes());
    e
}

#[test]
fn madt_lists_the_usable_cpus_once_each() {
    let io_apic = vec![1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0];
    let rsdp = install(&[madt(&[
        local_apic(0, 1),
        io_apic,
        local_apic(1, 1),
        local_apic(2, 0),   // disabled, not online capable: skipped
        local_apic(3, 2),   // online capable
        local_x2apic(1, 1), // the same CPU again
        local_x2apic(300, 1),
    ])]);
    let cpus = AcpiTables::from_rsdp(rsdp).unwrap().read_cpus().unwrap();
    assert_eq!(cpus.apic_ids(), &[0, 1, 3, 300]);
}

#[test]
fn madt_absent_or_corrupt_is_an_error() {
    let rsdp = install(&[srat(&[])]);
    assert_eq!(
        AcpiTables::from_rsdp(rsdp).unwrap().read_cpus(),
        Err(AcpiError::NotFound(*b"APIC"))
    );
    let mut bad = madt(&[local_apic(0, 1)]);
    bad[45] = 0; // an entry of length 0
    seal(&mut bad, 9);
    let rsdp = install(&[bad]);
    assert_eq!(
        AcpiTables::from_rsdp(rsdp).unwrap().read_cpus(),
        Err(AcpiError::BadTable(*b"APIC"))
    );
}
