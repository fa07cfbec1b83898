//! NLB interop against the fixtures of `../shared/nlb/` (written by
//! `nlb_tools` 0.0.4 through h5py; metrics from `nlb_tools.evaluation.evaluate`).
#![cfg(feature = "nlb")]

use lflow_host::nlb::layout::score_files;
use std::path::PathBuf;

fn nlb_dir() -> PathBuf {
    match std::env::var_os("LFLOW_SHARED") {
        Some(p) => PathBuf::from(p).join("nlb"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/nlb"),
    }
}

#[test]
fn fixture_submissions_score_as_nlb_tools() {
    let dir = nlb_dir();
    let text = std::fs::read_to_string(dir.join("expected_metrics.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    for name in ["submission_truth", "submission_noisy"] {
        let got = score_files(&dir.join(format!("{name}.h5")), &dir.join("eval_target.h5")).unwrap();
        let want = expected[name].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: groups");
        for ((group, metrics), w) in got.iter().zip(want) {
            let w = w[group].as_object().unwrap_or_else(|| panic!("{name}: no group {group} expected"));
            // Same keys, in the file's order (serde_json's map sorts them: find them in the text).
            let mut keys: Vec<&String> = w.keys().collect();
            let section = &text[text.find(name).unwrap()..];
            keys.sort_by_key(|k| section.find(&format!("\"{k}\"")).unwrap());
            let ours: Vec<&String> = metrics.iter().map(|(k, _)| k).collect();
            assert_eq!(ours, keys, "{name}: keys and their order");
            for (k, v) in metrics {
                let want = w[k].as_f64().unwrap();
                eprintln!("{name} {group} {k}: ours {v:.12} nlb_tools {want:.12} ({:.1e})", (v - want).abs());
                assert!((v - want).abs() < 1e-6, "{name} {k}: {v} vs {want}");
            }
        }
    }
}
