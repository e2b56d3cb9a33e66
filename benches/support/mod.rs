//! What the criterion benchmarks share: the selection of the reports they
//! print, the process's resident memory, percentiles and criterion's
//! settings. Included by each bench with `#[path]`.

use std::time::Duration;

use criterion::Criterion;

/// Whether the report `name` is selected by the filter on the command line
/// (`cargo bench -- <filter>`; its `|` alternatives are matched as
/// substrings), as criterion selects benchmarks: the reports are not
/// criterion benchmarks, so they check for themselves.
pub(crate) fn report_selected(name: &str) -> bool {
    const TAKES_VALUE: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--profile-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--output-format",
        "--color",
        "--noise-threshold",
        "--significance-level",
        "--confidence-level",
        "--nresamples",
        "--plotting-backend",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if TAKES_VALUE.contains(&args[i].as_str()) {
            i += 1;
        } else if !args[i].starts_with('-') {
            filters.push(args[i].clone());
        }
        i += 1;
    }
    filters.is_empty() || filters.iter().any(|f| f.split('|').any(|p| name.contains(p)))
}

/// This process's resident memory, in bytes (Linux).
pub(crate) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The latency below which `p` (0 to 1) of `latencies` fall (sorts them).
pub(crate) fn percentile(latencies: &mut [u32], p: f64) -> u32 {
    latencies.sort_unstable();
    latencies[((latencies.len() - 1) as f64 * p) as usize]
}

/// Criterion's settings: short warm-up and measurement, as the reports
/// around the benchmarks take their own time.
pub(crate) fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}
