//! Benchmarks only: see `benches/engine.rs` and `docs/performance.md` at the repository root.

/// The workload payloads, shipped with the repository under `benches-data/`.
pub mod payloads {
    /// Workload A: a product URL, ECC M, byte mode, version 3.
    pub const A: &str = include_str!("../../../benches-data/payload_a.txt");
    /// Workload D: 1,000 characters, ECC M, version 26.
    pub const D: &str = include_str!("../../../benches-data/payload_d.txt");
}
