//! `unsafe` lives in one module of `lflow-core`: `src/kernels/arm/`, the
//! Cortex-M kernels (each with a portable twin that tests prove equal). The
//! crate denies `unsafe_code`; this keeps any other module from allowing it.

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_cortex_m_kernels_use_unsafe() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 20, "read the crate's sources ({} files)", files.len());
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(lib.contains("#![deny(unsafe_code)]"), "lib.rs denies unsafe code");
    let mut users = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if text.contains("allow(unsafe_code)") || text.contains("unsafe {") || text.contains("unsafe fn") {
            users.push(f.strip_prefix(&src).unwrap().display().to_string());
        }
    }
    users.sort();
    assert_eq!(users, ["kernels/arm/float.rs", "kernels/arm/int8.rs", "kernels/arm/mod.rs"], "modules using unsafe");
}
