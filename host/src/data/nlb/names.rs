//! The benchmark's dataset names and how `nlb_tools` names their groups.

/// The seven datasets, in the order `nlb_tools.evaluation.evaluate` visits them.
pub const DATASETS: [&str; 7] =
    ["mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg", "mc_maze_large", "mc_maze_medium", "mc_maze_small"];

/// The group suffix of a bin width: none at 5 ms, `_20` at 20 ms (`_{bin}` otherwise).
pub fn suffix(bin_ms: u32) -> String {
    if bin_ms == 5 {
        String::new()
    } else {
        format!("_{bin_ms}")
    }
}

/// The group of `dataset` at `bin_ms` in target and submission files (`mc_maze_small_20`).
pub fn group(dataset: &str, bin_ms: u32) -> String {
    format!("{dataset}{}", suffix(bin_ms))
}

/// Training trials of the MC_Maze scaling sets (the prefix of their metric keys).
pub fn scaling_trials(dataset: &str) -> Option<usize> {
    match dataset {
        "mc_maze_large" => Some(500),
        "mc_maze_medium" => Some(250),
        "mc_maze_small" => Some(100),
        _ => None,
    }
}

/// Whether `name` is one of the benchmark's datasets.
pub fn is_dataset(name: &str) -> bool {
    DATASETS.contains(&name)
}
