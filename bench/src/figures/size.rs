//! The size of the release binaries under test (the workspace's release profile: lto,
//! one codegen unit).

use super::{Bench, Figure, Group, Readings};
use crate::report::{Table, Unit};
use crate::stats::Stats;

/// This group's tables.
pub fn tables(bench: &Bench) -> Vec<Table> {
    if !bench.wants(Group::Size) {
        return Vec::new();
    }
    let mut readings = Readings::default();
    for (key, path) in [
        ("size_velos", &bench.bins.velos),
        ("size_velosd", &bench.bins.velosd),
    ] {
        let size = std::fs::metadata(path).map(|m| Stats::one(m.len() as f64));
        readings.set_result(key, size.map_err(anyhow::Error::from));
        readings.how(key, path.display().to_string());
    }
    let figures = vec![
        Figure::new("size_velos", Group::Size, "velos binary", Unit::Bytes).velos_only(),
        Figure::new("size_velosd", Group::Size, "velosd binary", Unit::Bytes).velos_only(),
    ];
    super::table(bench, "Binaries", figures, &readings, None)
        .into_iter()
        .collect()
}
