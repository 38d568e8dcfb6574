//! A reader for flattened device trees (DTB, devicetree specification v0.4, ch. 5):
//! how aarch64 firmware (QEMU `virt`) tells the kernel about RAM, CPUs, the UART, the
//! interrupt controller, the timer, NUMA and how to start CPUs (`/psci`).
//!
//! ## Blob layout (all integers big-endian)
//! ```text
//! header (40 bytes): magic 0xd00dfeed, totalsize, off_dt_struct, off_dt_strings,
//!                    off_mem_rsvmap, version, last_comp_version, boot_cpuid_phys,
//!                    size_dt_strings, size_dt_struct
//! struct block:      tokens, 4-byte aligned:
//!                    BEGIN_NODE (1) name\0 pad | END_NODE (2) |
//!                    PROP (3) len nameoff value pad | NOP (4) | END (9)
//! strings block:     property names, NUL-terminated, indexed by nameoff
//! ```
//!
//! ## Invariants
//! * Nothing here trusts the blob: every offset and length is checked against the
//!   slice, a malformed blob yields [`DtError`] (or ends an iteration early), never a
//!   panic or an out-of-bounds read.
//! * No heap: [`MachineInfo`] is fixed-size, so it can be filled before the heap
//!   exists. Entries beyond the fixed capacities are ignored.
//!
//! [`DeviceTree::nodes`] walks all nodes in document order; [`MachineInfo::from_tree`]
//! pulls out what the kernel needs, and [`MachineInfo::apply_numa`] fills a
//! [`NumaTopology`] from `numa-node-id` properties and `/distance-map`.

use crate::memory::numa::{NumaNode, NumaTopology, LOCAL_DISTANCE};
use crate::memory::{MemoryRegion, PhysAddr};

/// The magic number at the start of every blob.
pub const DTB_MAGIC: u32 = 0xd00d_feed;
/// Size of the blob header.
pub const HEADER_SIZE: usize = 40;
/// Deepest node nesting the walker follows.
pub const MAX_DEPTH: usize = 16;
/// Most memory ranges [`MachineInfo`] records.
pub const MAX_MEMORY: usize = 16;
/// Most CPUs [`MachineInfo`] records.
pub const MAX_CPUS: usize = 64;
/// Most distance-map entries [`MachineInfo`] records.
pub const MAX_DISTANCES: usize = 64;
/// Most reserved ranges [`MachineInfo`] records.
pub const MAX_RESERVED: usize = 16;
/// Longest `/chosen/bootargs` kept (longer command lines are cut).
pub const MAX_BOOTARGS: usize = 256;

const TOKEN_BEGIN_NODE: u32 = 1;
const TOKEN_END_NODE: u32 = 2;
const TOKEN_PROP: u32 = 3;
const TOKEN_NOP: u32 = 4;
const TOKEN_END: u32 = 9;

/// Why a blob was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtError {
    /// Shorter than its header, or than the `totalsize` the header claims.
    Truncated,
    /// The first word is not [`DTB_MAGIC`].
    BadMagic(u32),
    /// `last_comp_version` is newer than 17, the format this reader knows.
    UnsupportedVersion(u32),
    /// The struct or strings block lies outside the blob.
    BadLayout,
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a big-endian number of `cells` 32-bit cells (1 or 2) at the start of `bytes`.
fn read_cells(bytes: &[u8], cells: u32) -> Option<u64> {
    match cells {
        1 => be32(bytes, 0).map(u64::from),
        2 => Some(((be32(bytes, 0)? as u64) << 32) | be32(bytes, 4)? as u64),
        _ => None,
    }
}

/// The `totalsize` field of the header in `header` (at least 8 bytes), after checking
/// the magic. Used to learn how much memory to look at before building a slice.
pub fn total_size(header: &[u8]) -> Result<usize, DtError> {
    let magic = be32(header, 0).ok_or(DtError::Truncated)?;
    if magic != DTB_MAGIC {
        return Err(DtError::BadMagic(magic));
    }
    be32(header, 4)
        .map(|s| s as usize)
        .ok_or(DtError::Truncated)
}

/// A validated blob: header checked, blocks inside the slice.
#[derive(Debug, Clone, Copy)]
pub struct DeviceTree<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
    /// From the reservation map to the end of the blob (entries end at a (0, 0) pair).
    reserved: &'a [u8],
}

impl<'a> DeviceTree<'a> {
    /// Checks the header of `blob` and locates its blocks.
    pub fn parse(blob: &'a [u8]) -> Result<Self, DtError> {
        if blob.len() < HEADER_SIZE {
            return Err(DtError::Truncated);
        }
        let total = total_size(blob)?;
        if total > blob.len() || total < HEADER_SIZE {
            return Err(DtError::Truncated);
        }
        let field = |i: usize| be32(blob, 4 * i).unwrap_or(0) as usize;
        let last_comp = field(6) as u32;
        if last_comp > 17 {
            return Err(DtError::UnsupportedVersion(last_comp));
        }
        let block = |off: usize, len: usize| {
            let end = off.checked_add(len).filter(|&e| e <= total);
            end.map(|e| &blob[off..e]).ok_or(DtError::BadLayout)
        };
        Ok(DeviceTree {
            structs: block(field(2), field(9))?,
            strings: block(field(3), field(8))?,
            reserved: blob[..total].get(field(4)..).ok_or(DtError::BadLayout)?,
        })
    }

    /// The memory reservation map: `(address, size)` ranges the kernel must not use
    /// (ends at the first empty entry or at the end of the blob).
    pub fn reserved(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        self.reserved
            .chunks_exact(16)
            .map(|e| {
                let word = |i: usize| u64::from_be_bytes(e[i..i + 8].try_into().unwrap_or([0; 8]));
                (word(0), word(8))
            })
            .take_while(|&(a, s)| a != 0 || s != 0)
    }

    /// The property name at `offset` in the strings block.
    fn string_at(&self, offset: usize) -> Option<&'a [u8]> {
        let rest = self.strings.get(offset..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        Some(&rest[..len])
    }

    /// Every node, in document order (the root first, with an empty name).
    pub fn nodes(&self) -> Nodes<'a> {
        Nodes {
            tree: *self,
            at: 0,
            depth: 0,
            cells: [(2, 1); MAX_DEPTH + 1],
            done: false,
        }
    }

    /// The first node whose full name (including the unit address) is `name`.
    pub fn find_node(&self, name: &str) -> Option<Node<'a>> {
        self.nodes().find(|n| n.name == name.as_bytes())
    }
}

/// One property: name and raw value.
#[derive(Debug, Clone, Copy)]
pub struct Property<'a> {
    /// The property's name.
    pub name: &'a [u8],
    /// The raw value.
    pub value: &'a [u8],
}

impl Property<'_> {
    /// The value as one u32 cell.
    pub fn as_u32(&self) -> Option<u32> {
        (self.value.len() == 4)
            .then(|| be32(self.value, 0))
            .flatten()
    }

    /// Whether the value (a list of NUL-terminated strings) contains `s`.
    pub fn contains_str(&self, s: &str) -> bool {
        self.value
            .split(|&b| b == 0)
            .any(|item| item == s.as_bytes())
    }
}

/// Iterator over the properties of one node.
#[derive(Debug, Clone)]
pub struct Properties<'a> {
    tree: DeviceTree<'a>,
    at: usize,
}

impl<'a> Iterator for Properties<'a> {
    type Item = Property<'a>;

    fn next(&mut self) -> Option<Property<'a>> {
        let s = self.tree.structs;
        loop {
            match be32(s, self.at)? {
                TOKEN_NOP => self.at += 4,
                TOKEN_PROP => {
                    let len = be32(s, self.at + 4)? as usize;
                    let name_off = be32(s, self.at + 8)? as usize;
                    let start = self.at + 12;
                    let value = s.get(start..start.checked_add(len)?)?;
                    self.at = start + len.next_multiple_of(4);
                    let name = self.tree.string_at(name_off)?;
                    return Some(Property { name, value });
                }
                _ => return None,
            }
        }
    }
}

/// A node: its name, depth and where its properties start.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    tree: DeviceTree<'a>,
    props_at: usize,
    /// The full name, e.g. `memory@40000000` (empty for the root).
    pub name: &'a [u8],
    /// 0 for the root, 1 for its children, ...
    pub depth: usize,
    /// `#address-cells` of the parent: how `reg` addresses are encoded.
    pub address_cells: u32,
    /// `#size-cells` of the parent: how `reg` sizes are encoded.
    pub size_cells: u32,
}

impl<'a> Node<'a> {
    /// The node's properties.
    pub fn properties(&self) -> Properties<'a> {
        Properties {
            tree: self.tree,
            at: self.props_at,
        }
    }

    /// The property called `name`.
    pub fn property(&self, name: &str) -> Option<Property<'a>> {
        self.properties().find(|p| p.name == name.as_bytes())
    }

    /// The name without its unit address (`memory` for `memory@40000000`).
    pub fn base_name(&self) -> &'a [u8] {
        let end = self
            .name
            .iter()
            .position(|&b| b == b'@')
            .unwrap_or(self.name.len());
        &self.name[..end]
    }

    /// Whether the `compatible` list contains `s`.
    pub fn is_compatible(&self, s: &str) -> bool {
        self.property("compatible")
            .is_some_and(|p| p.contains_str(s))
    }

    /// The `(address, size)` pairs of the `reg` property.
    pub fn reg(&self) -> Reg<'a> {
        Reg {
            value: self.property("reg").map_or(&[][..], |p| p.value),
            address_cells: self.address_cells,
            size_cells: self.size_cells,
        }
    }
}

/// Iterator over the `(address, size)` pairs of a `reg` property. Entries with more
/// than two cells per number are not supported and end the iteration.
#[derive(Debug, Clone)]
pub struct Reg<'a> {
    value: &'a [u8],
    address_cells: u32,
    size_cells: u32,
}

impl Iterator for Reg<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let a = self.address_cells as usize * 4;
        let entry = a + self.size_cells as usize * 4;
        if entry == 0 || self.value.len() < entry {
            return None;
        }
        let addr = read_cells(self.value, self.address_cells)?;
        let size = match self.size_cells {
            0 => 0,
            n => read_cells(&self.value[a..], n)?,
        };
        self.value = &self.value[entry..];
        Some((addr, size))
    }
}

/// Iterator over all nodes, see [`DeviceTree::nodes`].
#[derive(Debug, Clone)]
pub struct Nodes<'a> {
    tree: DeviceTree<'a>,
    at: usize,
    depth: usize,
    /// `(#address-cells, #size-cells)` declared by the open node at each depth.
    cells: [(u32, u32); MAX_DEPTH + 1],
    done: bool,
}

impl<'a> Nodes<'a> {
    /// Reads the BEGIN_NODE at `self.at` and returns the node it opens.
    fn begin_node(&mut self) -> Option<Node<'a>> {
        let s = self.tree.structs;
        let name_start = self.at + 4;
        let name_len = s.get(name_start..)?.iter().position(|&b| b == 0)?;
        let name = &s[name_start..name_start + name_len];
        self.at = name_start + (name_len + 1).next_multiple_of(4);
        if self.depth > MAX_DEPTH {
            return None;
        }
        let (address_cells, size_cells) = match self.depth {
            0 => (2, 1),
            d => self.cells[d - 1],
        };
        let node = Node {
            tree: self.tree,
            props_at: self.at,
            name,
            depth: self.depth,
            address_cells,
            size_cells,
        };
        let own = |p: &str, default| node.property(p).and_then(|p| p.as_u32()).unwrap_or(default);
        self.cells[self.depth] = (own("#address-cells", 2), own("#size-cells", 1));
        self.depth += 1;
        Some(node)
    }

    /// Skips the PROP token at `self.at`.
    fn skip_prop(&mut self) -> Option<()> {
        let len = be32(self.tree.structs, self.at + 4)? as usize;
        self.at = (self.at + 12).checked_add(len.next_multiple_of(4))?;
        Some(())
    }
}

impl<'a> Iterator for Nodes<'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        while !self.done {
            let step = match be32(self.tree.structs, self.at) {
                Some(TOKEN_BEGIN_NODE) => match self.begin_node() {
                    Some(node) => return Some(node),
                    None => None,
                },
                Some(TOKEN_PROP) => self.skip_prop(),
                Some(TOKEN_NOP) => {
                    self.at += 4;
                    Some(())
                }
                Some(TOKEN_END_NODE) if self.depth > 0 => {
                    self.depth -= 1;
                    self.at += 4;
                    Some(())
                }
                _ => None,
            };
            if step.is_none() {
                self.done = true;
            }
        }
        None
    }
}

/// The end token is optional for the walker (a blob is usable up to it); this checks
/// that the struct block really ends with one, after balanced nodes.
pub fn is_well_formed(tree: &DeviceTree<'_>) -> bool {
    let mut nodes = tree.nodes();
    for _ in nodes.by_ref() {}
    nodes.depth == 0 && be32(tree.structs, nodes.at) == Some(TOKEN_END)
}

// ---- what the kernel wants to know ----

/// A range of RAM and the NUMA node the firmware puts it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryRange {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// `numa-node-id`, if the node has one.
    pub node: Option<u32>,
}

/// A CPU: its MPIDR affinity (`reg`) and NUMA node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuInfo {
    /// The `reg` of the cpu node (MPIDR affinity bits).
    pub mpidr: u64,
    /// `numa-node-id`, if the node has one.
    pub node: Option<u32>,
}

/// Which generation of ARM Generic Interrupt Controller, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gic {
    /// GICv2: distributor and CPU interface.
    V2 {
        /// GICD base.
        distributor: u64,
        /// GICC base.
        cpu_interface: u64,
    },
    /// GICv3: distributor and redistributors.
    V3 {
        /// GICD base.
        distributor: u64,
        /// First GICR frame.
        redistributor: u64,
        /// Bytes of the (first) redistributor region: one frame pair per CPU.
        redistributor_size: u64,
    },
}

/// The instruction that calls PSCI firmware (`/psci`'s `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciConduit {
    /// `hvc #0` (QEMU `virt` without EL2 emulated).
    Hvc,
    /// `smc #0` (firmware at EL3, or QEMU with `virtualization=on`).
    Smc,
}

/// The Power State Coordination Interface: how CPUs are started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Psci {
    /// How to call it.
    pub conduit: PsciConduit,
    /// Function id of CPU_ON (`cpu_on`; PSCI 0.2 and later fix it at 0xc4000003,
    /// the SMC64 id).
    pub cpu_on: u32,
}

/// PSCI 0.2's CPU_ON, 64-bit calling convention.
pub const PSCI_CPU_ON_64: u32 = 0xc400_0003;

/// The ARM generic timer's interrupts (PPI numbers, as in the DT: add 16 for the
/// GIC interrupt id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerIrqs {
    /// Secure physical timer.
    pub secure_phys: u32,
    /// Non-secure physical timer (CNTP).
    pub phys: u32,
    /// Virtual timer (CNTV).
    pub virt: u32,
    /// Hypervisor timer.
    pub hyp: u32,
}

/// One entry of `/distance-map`'s `distance-matrix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Distance {
    /// From node.
    pub from: u32,
    /// To node.
    pub to: u32,
    /// Distance (10 = local).
    pub distance: u32,
}

/// Everything the kernel reads from the tree, in fixed-size arrays.
#[derive(Debug, Clone)]
pub struct MachineInfo {
    memory: [MemoryRange; MAX_MEMORY],
    memory_len: usize,
    cpus: [CpuInfo; MAX_CPUS],
    cpus_len: usize,
    distances: [Distance; MAX_DISTANCES],
    distances_len: usize,
    /// Base of the PL011 UART, if there is one.
    pub uart: Option<u64>,
    /// The interrupt controller, if found.
    pub gic: Option<Gic>,
    /// The generic timer's interrupts, if found.
    pub timer: Option<TimerIrqs>,
    /// The PSCI firmware interface, if the tree has a `/psci` node.
    pub psci: Option<Psci>,
    bootargs: [u8; MAX_BOOTARGS],
    bootargs_len: usize,
    reserved: [(u64, u64); MAX_RESERVED],
    reserved_len: usize,
}

impl Default for MachineInfo {
    fn default() -> Self {
        MachineInfo {
            memory: [MemoryRange::default(); MAX_MEMORY],
            memory_len: 0,
            cpus: [CpuInfo::default(); MAX_CPUS],
            cpus_len: 0,
            distances: [Distance::default(); MAX_DISTANCES],
            distances_len: 0,
            uart: None,
            gic: None,
            timer: None,
            psci: None,
            bootargs: [0; MAX_BOOTARGS],
            bootargs_len: 0,
            reserved: [(0, 0); MAX_RESERVED],
            reserved_len: 0,
        }
    }
}

fn numa_id(node: &Node<'_>) -> Option<u32> {
    node.property("numa-node-id").and_then(|p| p.as_u32())
}

impl MachineInfo {
    /// Reads memory, CPUs, UART, GIC, timer and distances from `tree`.
    pub fn from_tree(tree: &DeviceTree<'_>) -> Self {
        let mut info = MachineInfo::default();
        tree.reserved().for_each(|r| info.add_reserved(r));
        let (mut in_cpus, mut in_reserved) = (false, false);
        for node in tree.nodes() {
            if node.depth == 1 {
                in_cpus = node.name == b"cpus";
                in_reserved = node.name == b"reserved-memory";
            } else if node.depth == 2 && in_reserved {
                node.reg().for_each(|r| info.add_reserved(r));
            }
            info.visit(&node, in_cpus && node.depth == 2);
        }
        info
    }

    fn add_reserved(&mut self, (start, size): (u64, u64)) {
        if size > 0 && self.reserved_len < MAX_RESERVED {
            self.reserved[self.reserved_len] = (start, size);
            self.reserved_len += 1;
        }
    }

    /// Ranges the firmware reserves (the blob's reservation map and the children of
    /// `/reserved-memory`), as `(start, size)`.
    pub fn reserved(&self) -> &[(u64, u64)] {
        &self.reserved[..self.reserved_len]
    }

    fn visit(&mut self, node: &Node<'_>, in_cpus: bool) {
        let device_type = node.property("device_type");
        let is = |t: &str| device_type.is_some_and(|p| p.contains_str(t));
        if is("memory") || (node.depth == 1 && node.base_name() == b"memory") {
            self.add_memory(node);
        } else if in_cpus && node.base_name() == b"cpu" {
            self.add_cpu(node);
        } else if node.is_compatible("arm,pl011") && self.uart.is_none() {
            self.uart = node.reg().next().map(|(a, _)| a);
        } else if node.property("interrupt-controller").is_some() && self.gic.is_none() {
            self.gic = gic_of(node);
        } else if node.is_compatible("arm,armv8-timer") {
            self.timer = timer_of(node);
        } else if node.is_compatible("numa-distance-map-v1") {
            self.add_distances(node);
        } else if node.depth == 1 && node.name == b"chosen" {
            self.add_bootargs(node);
        } else if node.depth == 1 && is_psci(node) {
            self.psci = psci_of(node);
        }
    }

    fn add_bootargs(&mut self, node: &Node<'_>) {
        let Some(p) = node.property("bootargs") else {
            return;
        };
        let text = p.value.split(|&b| b == 0).next().unwrap_or(&[]);
        let mut len = text.len().min(MAX_BOOTARGS);
        while core::str::from_utf8(&text[..len]).is_err() {
            len -= 1;
        }
        self.bootargs[..len].copy_from_slice(&text[..len]);
        self.bootargs_len = len;
    }

    /// The kernel command line (`/chosen/bootargs`, QEMU's `-append`), or "".
    pub fn bootargs(&self) -> &str {
        core::str::from_utf8(&self.bootargs[..self.bootargs_len]).unwrap_or("")
    }

    fn add_memory(&mut self, node: &Node<'_>) {
        let id = numa_id(node);
        for (start, size) in node.reg() {
            if size > 0 && self.memory_len < MAX_MEMORY {
                self.memory[self.memory_len] = MemoryRange {
                    start,
                    size,
                    node: id,
                };
                self.memory_len += 1;
            }
        }
        self.memory[..self.memory_len].sort_unstable_by_key(|m| m.start);
    }

    fn add_cpu(&mut self, node: &Node<'_>) {
        let Some((mpidr, _)) = node.reg().next() else {
            return;
        };
        if self.cpus_len < MAX_CPUS {
            self.cpus[self.cpus_len] = CpuInfo {
                mpidr,
                node: numa_id(node),
            };
            self.cpus_len += 1;
        }
    }

    fn add_distances(&mut self, node: &Node<'_>) {
        let Some(p) = node.property("distance-matrix") else {
            return;
        };
        for entry in p.value.chunks_exact(12) {
            let cell = |i: usize| be32(entry, i * 4).unwrap_or(0);
            if self.distances_len < MAX_DISTANCES {
                self.distances[self.distances_len] = Distance {
                    from: cell(0),
                    to: cell(1),
                    distance: cell(2),
                };
                self.distances_len += 1;
            }
        }
    }

    /// RAM ranges, sorted by address.
    pub fn memory(&self) -> &[MemoryRange] {
        &self.memory[..self.memory_len]
    }

    /// Total bytes of RAM.
    pub fn memory_total(&self) -> u64 {
        self.memory()
            .iter()
            .fold(0u64, |t, m| t.saturating_add(m.size))
    }

    /// The CPUs, in tree order.
    pub fn cpus(&self) -> &[CpuInfo] {
        &self.cpus[..self.cpus_len]
    }

    /// The `/distance-map` entries.
    pub fn distances(&self) -> &[Distance] {
        &self.distances[..self.distances_len]
    }

    /// The RAM as frame-allocator regions, each tagged with its node.
    pub fn memory_regions(&self) -> impl Iterator<Item = MemoryRegion> + '_ {
        self.memory().iter().map(|m| {
            let node = NumaNode {
                id: m.node.unwrap_or(0),
            };
            MemoryRegion::new(PhysAddr(m.start), m.size).on_node(node)
        })
    }

    /// Fills `topology` with the NUMA nodes, memory, CPUs and distances of the tree.
    /// Without any `numa-node-id` the machine is one node, 0. CPUs are numbered in
    /// tree order. Returns the number of nodes; entries the topology refuses (node ids
    /// too large, bad distances) are skipped.
    pub fn apply_numa(&self, topology: &mut NumaTopology) -> usize {
        let node = |id: Option<u32>| NumaNode {
            id: id.unwrap_or(0),
        };
        let ids = self.memory().iter().map(|m| m.node);
        for id in ids.chain(self.cpus().iter().map(|c| c.node)) {
            let _ = topology.add_node(node(id));
        }
        for m in self.memory() {
            let _ = topology.add_memory(node(m.node), PhysAddr(m.start), m.size);
        }
        for (i, c) in self.cpus().iter().enumerate() {
            let _ = topology.add_cpu(i as u32, node(c.node));
        }
        for d in self.distances() {
            let value = u8::try_from(d.distance).unwrap_or(u8::MAX);
            let value = if d.from == d.to {
                LOCAL_DISTANCE
            } else {
                value
            };
            let (from, to) = (NumaNode { id: d.from }, NumaNode { id: d.to });
            let _ = topology.set_distance(from, to, value);
        }
        topology.nodes().count()
    }
}

fn gic_of(node: &Node<'_>) -> Option<Gic> {
    let mut reg = node.reg();
    let (distributor, _) = reg.next()?;
    let (second, second_size) = reg.next()?;
    if node.is_compatible("arm,gic-v3") {
        Some(Gic::V3 {
            distributor,
            redistributor: second,
            redistributor_size: second_size,
        })
    } else if node.is_compatible("arm,cortex-a15-gic")
        || node.is_compatible("arm,gic-400")
        || node.is_compatible("arm,cortex-a9-gic")
    {
        Some(Gic::V2 {
            distributor,
            cpu_interface: second,
        })
    } else {
        None
    }
}

fn is_psci(node: &Node<'_>) -> bool {
    node.is_compatible("arm,psci") || node.is_compatible("arm,psci-0.2")
}

/// `/psci`: `method` ("hvc" or "smc") and `cpu_on` (only PSCI 0.1 trees need it:
/// from 0.2 on the id is fixed, [`PSCI_CPU_ON_64`]).
fn psci_of(node: &Node<'_>) -> Option<Psci> {
    let method = node.property("method")?;
    let conduit = if method.contains_str("hvc") {
        PsciConduit::Hvc
    } else if method.contains_str("smc") {
        PsciConduit::Smc
    } else {
        return None;
    };
    let fixed = node.is_compatible("arm,psci-0.2").then_some(PSCI_CPU_ON_64);
    let cpu_on = node.property("cpu_on").and_then(|p| p.as_u32()).or(fixed)?;
    Some(Psci { conduit, cpu_on })
}

/// The timer's `interrupts`: four triples (type, number, flags) in the order secure
/// physical, non-secure physical, virtual, hypervisor.
fn timer_of(node: &Node<'_>) -> Option<TimerIrqs> {
    let v = node.property("interrupts")?.value;
    let irq = |i: usize| be32(v, i * 12 + 4);
    Some(TimerIrqs {
        secure_phys: irq(0)?,
        phys: irq(1)?,
        virt: irq(2)?,
        hyp: irq(3).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests;
