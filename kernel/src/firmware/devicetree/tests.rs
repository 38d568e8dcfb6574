//! Host tests: blobs built here, shaped like QEMU `virt`'s, plus corrupted ones.

use super::*;
use proptest::prelude::*;

/// Builds a flattened device tree, token by token.
struct Builder {
    structs: Vec<u8>,
    strings: Vec<u8>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            structs: Vec::new(),
            strings: Vec::new(),
        }
    }
    fn word(&mut self, w: u32) {
        self.structs.extend_from_slice(&w.to_be_bytes());
    }
    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }
    fn begin(&mut self, name: &str) -> &mut Self {
        self.word(TOKEN_BEGIN_NODE);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }
    fn end(&mut self) -> &mut Self {
        self.word(TOKEN_END_NODE);
        self
    }
    fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.word(TOKEN_PROP);
        self.word(value.len() as u32);
        self.word(off);
        self.structs.extend_from_slice(value);
        self.pad();
        self
    }
    fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let v: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &v)
    }
    fn string(&mut self, name: &str, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.prop(name, &v)
    }
    fn finish(&mut self) -> Vec<u8> {
        self.finish_with_reserved(&[])
    }
    fn finish_with_reserved(&mut self, reserved: &[(u64, u64)]) -> Vec<u8> {
        self.word(TOKEN_END);
        let off_rsv = HEADER_SIZE as u32;
        let off_struct = off_rsv + 16 * (reserved.len() as u32 + 1);
        let off_strings = off_struct + self.structs.len() as u32;
        let total = off_strings + self.strings.len() as u32;
        let header = [
            DTB_MAGIC,
            total,
            off_struct,
            off_strings,
            off_rsv,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structs.len() as u32,
        ];
        let mut blob: Vec<u8> = header.iter().flat_map(|w| w.to_be_bytes()).collect();
        for (a, n) in reserved {
            blob.extend_from_slice(&a.to_be_bytes());
            blob.extend_from_slice(&n.to_be_bytes());
        }
        blob.extend_from_slice(&[0; 16]);
        blob.extend_from_slice(&self.structs);
        blob.extend_from_slice(&self.strings);
        blob
    }
}

/// A tree like `qemu-system-aarch64 -M virt -smp 2 -m 256M` with two NUMA nodes.
fn virt_numa() -> Vec<u8> {
    let mut b = Builder::new();
    b.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2]);
    b.begin("memory@48000000")
        .cells("numa-node-id", &[1])
        .cells("reg", &[0, 0x4800_0000, 0, 0x0800_0000])
        .string("device_type", "memory")
        .end();
    b.begin("memory@40000000")
        .cells("numa-node-id", &[0])
        .cells("reg", &[0, 0x4000_0000, 0, 0x0800_0000])
        .string("device_type", "memory")
        .end();
    b.begin("pl011@9000000")
        .cells("reg", &[0, 0x0900_0000, 0, 0x1000])
        .prop("compatible", b"arm,pl011\0arm,primecell\0")
        .end();
    b.begin("intc@8000000")
        .cells(
            "reg",
            &[0, 0x0800_0000, 0, 0x1_0000, 0, 0x0801_0000, 0, 0x1_0000],
        )
        .string("compatible", "arm,cortex-a15-gic")
        .prop("interrupt-controller", &[])
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2]);
    b.begin("v2m@8020000")
        .cells("reg", &[0, 0x0802_0000, 0, 0x1000])
        .end();
    b.end();
    b.begin("cpus")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[0]);
    b.begin("cpu-map").begin("socket0").end().end();
    for i in 0..2 {
        b.begin(&format!("cpu@{i}"))
            .cells("numa-node-id", &[i])
            .cells("reg", &[i])
            .string("device_type", "cpu")
            .end();
    }
    b.end();
    b.begin("timer")
        .cells(
            "interrupts",
            &[1, 13, 0x304, 1, 14, 0x304, 1, 11, 0x304, 1, 10, 0x304],
        )
        .prop("compatible", b"arm,armv8-timer\0arm,armv7-timer\0")
        .end();
    b.begin("distance-map")
        .cells("distance-matrix", &[0, 0, 10, 0, 1, 20, 1, 0, 20, 1, 1, 10])
        .string("compatible", "numa-distance-map-v1")
        .end();
    b.begin("chosen").string("bootargs", "test timer").end();
    b.end();
    b.finish()
}

#[test]
fn reads_a_virt_like_tree() {
    let blob = virt_numa();
    let tree = DeviceTree::parse(&blob).unwrap();
    assert!(is_well_formed(&tree));
    let info = MachineInfo::from_tree(&tree);
    assert_eq!(
        info.memory(),
        &[
            MemoryRange {
                start: 0x4000_0000,
                size: 0x0800_0000,
                node: Some(0)
            },
            MemoryRange {
                start: 0x4800_0000,
                size: 0x0800_0000,
                node: Some(1)
            },
        ]
    );
    assert_eq!(info.memory_total(), 256 << 20);
    assert_eq!(info.cpus().len(), 2);
    assert_eq!(
        info.cpus()[1],
        CpuInfo {
            mpidr: 1,
            node: Some(1)
        }
    );
    assert_eq!(info.uart, Some(0x0900_0000));
    assert_eq!(
        info.gic,
        Some(Gic::V2 {
            distributor: 0x0800_0000,
            cpu_interface: 0x0801_0000
        })
    );
    assert_eq!(info.timer.map(|t| (t.phys, t.virt)), Some((14, 11)));
    assert_eq!(info.distances().len(), 4);
    assert_eq!(info.bootargs(), "test timer");
}

#[test]
fn numa_topology_from_tree() {
    let blob = virt_numa();
    let info = MachineInfo::from_tree(&DeviceTree::parse(&blob).unwrap());
    let mut t = NumaTopology::new();
    assert_eq!(info.apply_numa(&mut t), 2);
    let (n0, n1) = (NumaNode { id: 0 }, NumaNode { id: 1 });
    assert_eq!(t.distance(n0, n1), Some(20));
    assert_eq!(t.distance(n1, n1), Some(10));
    assert_eq!(t.node_of_cpu(1), n1);
    assert_eq!(t.node_of_addr(PhysAddr(0x4900_0000)), Some(n1));
    let regions: Vec<_> = info.memory_regions().collect();
    assert_eq!(regions[1].node, n1);
}

#[test]
fn tree_without_numa_is_one_node() {
    let mut b = Builder::new();
    b.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2]);
    b.begin("memory@40000000")
        .cells("reg", &[0, 0x4000_0000, 0, 0x1000_0000])
        .string("device_type", "memory")
        .end();
    b.end();
    let blob = b.finish();
    let info = MachineInfo::from_tree(&DeviceTree::parse(&blob).unwrap());
    let mut t = NumaTopology::new();
    assert_eq!(info.apply_numa(&mut t), 1);
    assert_eq!(info.memory_total(), 0x1000_0000);
}

#[test]
fn reserved_ranges_from_map_and_node() {
    let mut b = Builder::new();
    b.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2]);
    b.begin("reserved-memory")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2]);
    b.begin("secmon@4e000000")
        .cells("reg", &[0, 0x4e00_0000, 0, 0x10_0000])
        .end();
    b.end();
    b.end();
    let blob = b.finish_with_reserved(&[(0x4100_0000, 0x2000)]);
    let tree = DeviceTree::parse(&blob).unwrap();
    assert_eq!(tree.reserved().collect::<Vec<_>>(), [(0x4100_0000, 0x2000)]);
    let info = MachineInfo::from_tree(&tree);
    assert_eq!(
        info.reserved(),
        &[(0x4100_0000, 0x2000), (0x4e00_0000, 0x10_0000)]
    );
}

#[test]
fn refuses_bad_headers() {
    let blob = virt_numa();
    assert_eq!(
        DeviceTree::parse(&blob[..20]).err(),
        Some(DtError::Truncated)
    );
    assert_eq!(
        DeviceTree::parse(&blob[..blob.len() - 1]).err(),
        Some(DtError::Truncated)
    );
    let mut bad = blob.clone();
    bad[0] = 0;
    assert!(matches!(DeviceTree::parse(&bad), Err(DtError::BadMagic(_))));
    let mut bad = blob.clone();
    bad[8..12].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    assert_eq!(DeviceTree::parse(&bad).err(), Some(DtError::BadLayout));
    assert_eq!(total_size(&blob), Ok(blob.len()));
}

#[test]
fn deep_nesting_stops_cleanly() {
    let mut b = Builder::new();
    for i in 0..40 {
        b.begin(&format!("n{i}"));
    }
    for _ in 0..40 {
        b.end();
    }
    let blob = b.finish();
    let tree = DeviceTree::parse(&blob).unwrap();
    assert_eq!(tree.nodes().count(), MAX_DEPTH + 1);
}

proptest! {
    /// Any corruption of a valid blob is survived: parsing and walking never panic.
    #[test]
    fn corrupted_blobs_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut blob = virt_numa();
        for (i, v) in edits {
            let at = i.index(blob.len());
            blob[at] = v;
        }
        let len = cut.index(blob.len() + 1);
        if let Ok(tree) = DeviceTree::parse(&blob[..len]) {
            let info = MachineInfo::from_tree(&tree);
            let mut t = NumaTopology::new();
            info.apply_numa(&mut t);
            let _ = is_well_formed(&tree);
            for n in tree.nodes() {
                let _ = n.reg().count();
            }
        }
    }
}

/// Blobs QEMU 7.2 generated (`-M virt,dumpdtb=...`, trimmed to their `totalsize`):
/// `-m 256M` alone, and `-m 256M -smp 2` with two NUMA nodes at distance 20; and
/// `-M virt,gic-version=3 -smp 4 -m 256M` with CPUs 0-1 on node 0 and 2-3 on node 1.
const QEMU_VIRT: &[u8] = include_bytes!("qemu-virt.dtb");
const QEMU_VIRT_NUMA: &[u8] = include_bytes!("qemu-virt-numa.dtb");
const QEMU_VIRT_GICV3_SMP4: &[u8] = include_bytes!("qemu-virt-gicv3-smp4.dtb");

#[test]
fn reads_psci_from_qemu_trees() {
    let expected = Some(Psci {
        conduit: PsciConduit::Hvc,
        cpu_on: PSCI_CPU_ON_64,
    });
    for blob in [QEMU_VIRT, QEMU_VIRT_NUMA, QEMU_VIRT_GICV3_SMP4] {
        let info = MachineInfo::from_tree(&DeviceTree::parse(blob).unwrap());
        assert_eq!(info.psci, expected);
    }
}

#[test]
fn reads_cpus_and_redistributors_of_a_gicv3_smp_tree() {
    let info = MachineInfo::from_tree(&DeviceTree::parse(QEMU_VIRT_GICV3_SMP4).unwrap());
    let cpus: Vec<(u64, Option<u32>)> = info.cpus().iter().map(|c| (c.mpidr, c.node)).collect();
    assert_eq!(
        cpus,
        [(0, Some(0)), (1, Some(0)), (2, Some(1)), (3, Some(1))]
    );
    assert_eq!(
        info.gic,
        Some(Gic::V3 {
            distributor: 0x0800_0000,
            redistributor: 0x080a_0000,
            redistributor_size: 0xf6_0000,
        })
    );
}

fn psci_tree(method: &str, compatible: &str, cpu_on: Option<u32>) -> Vec<u8> {
    let mut b = Builder::new();
    b.begin("").begin("psci").string("compatible", compatible);
    b.string("method", method);
    if let Some(id) = cpu_on {
        b.cells("cpu_on", &[id]);
    }
    b.end().end().finish()
}

#[test]
fn psci_method_and_cpu_on() {
    let read = |blob: Vec<u8>| MachineInfo::from_tree(&DeviceTree::parse(&blob).unwrap()).psci;
    assert_eq!(
        read(psci_tree("smc", "arm,psci-0.2", None)),
        Some(Psci {
            conduit: PsciConduit::Smc,
            cpu_on: PSCI_CPU_ON_64
        })
    );
    assert_eq!(
        read(psci_tree("hvc", "arm,psci", Some(0x8400_0003))),
        Some(Psci {
            conduit: PsciConduit::Hvc,
            cpu_on: 0x8400_0003
        })
    );
    // PSCI 0.1 without `cpu_on`, or an unknown conduit: no way to start CPUs.
    assert_eq!(read(psci_tree("hvc", "arm,psci", None)), None);
    assert_eq!(read(psci_tree("svc", "arm,psci-0.2", None)), None);
}

#[test]
fn reads_qemu_generated_trees() {
    let tree = DeviceTree::parse(QEMU_VIRT).unwrap();
    assert!(is_well_formed(&tree));
    let info = MachineInfo::from_tree(&tree);
    assert_eq!(
        info.memory(),
        &[MemoryRange {
            start: 0x4000_0000,
            size: 256 << 20,
            node: None
        }]
    );
    assert_eq!(info.cpus().len(), 1);
    assert_eq!(info.uart, Some(0x0900_0000));
    assert_eq!(
        info.gic,
        Some(Gic::V2 {
            distributor: 0x0800_0000,
            cpu_interface: 0x0801_0000
        })
    );
    assert_eq!(info.timer.map(|t| (t.phys, t.virt)), Some((14, 11)));
    assert!(info.distances().is_empty());

    let info = MachineInfo::from_tree(&DeviceTree::parse(QEMU_VIRT_NUMA).unwrap());
    assert_eq!(info.memory_total(), 256 << 20);
    assert_eq!(
        info.memory()[1],
        MemoryRange {
            start: 0x4800_0000,
            size: 128 << 20,
            node: Some(1)
        }
    );
    assert_eq!(
        info.cpus()[1],
        CpuInfo {
            mpidr: 1,
            node: Some(1)
        }
    );
    let mut t = NumaTopology::new();
    assert_eq!(info.apply_numa(&mut t), 2);
    assert_eq!(t.distance(NumaNode { id: 0 }, NumaNode { id: 1 }), Some(20));
    assert_eq!(t.distance(NumaNode { id: 1 }, NumaNode { id: 0 }), Some(20));
}

proptest! {
    /// Corrupting a real QEMU blob never panics either.
    #[test]
    fn corrupted_qemu_blob_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..32),
    ) {
        let mut blob = QEMU_VIRT_NUMA.to_vec();
        for (i, v) in edits {
            let at = i.index(blob.len());
            blob[at] = v;
        }
        if let Ok(tree) = DeviceTree::parse(&blob) {
            let info = MachineInfo::from_tree(&tree);
            info.apply_numa(&mut NumaTopology::new());
            let _ = info.bootargs();
        }
    }
}
