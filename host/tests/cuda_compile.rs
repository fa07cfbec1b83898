//! Every CUDA kernel compiled to PTX by NVRTC for `compute_80` and
//! `compute_90`, then to machine code for `sm_80` and `sm_90` by `ptxas -v`:
//! no error, no register spill, static shared memory within 48 KiB. Prints
//! registers and shared memory per kernel.
//!
//! Needs NVRTC on the library path and `ptxas` (`$LFLOW_PTXAS` or on PATH);
//! `tools/test.sh` installs both from PyPI wheels. Without them the test
//! skips, unless `LFLOW_REQUIRE_NVRTC=1` (as in CI), where it fails.

use lflow_host::train::cuda::kernels::{compile_ptx, parse_ptxas_report, FILES};
use std::path::PathBuf;
use std::process::Command;

fn ptxas() -> PathBuf {
    std::env::var_os("LFLOW_PTXAS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("ptxas"))
}

#[test]
fn kernels_compile_to_machine_code_without_spills() {
    let required = std::env::var("LFLOW_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    let ptxas_ok = Command::new(ptxas()).arg("--version").output().is_ok_and(|o| o.status.success());
    if !lflow_host::train::cuda::nvrtc_present() || !ptxas_ok {
        assert!(!required, "NVRTC or ptxas missing (LD_LIBRARY_PATH, LFLOW_PTXAS) and LFLOW_REQUIRE_NVRTC=1");
        eprintln!("skipped: NVRTC or ptxas not found");
        return;
    }
    let version = lflow_host::train::cuda::kernels::nvrtc_version().expect("NVRTC loaded reports its version");
    eprintln!("NVRTC {}.{}", version.0, version.1);
    // CI runs this test once per toolkit (CUDA 12 and 13) and says which it put on the path.
    if let Some(want) = std::env::var("LFLOW_EXPECT_CUDA_MAJOR").ok().and_then(|v| v.parse::<i32>().ok()) {
        assert_eq!(version.0, want, "NVRTC {}.{} loaded, CUDA {want} expected", version.0, version.1);
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cuda-kernels-{}", version.0));
    std::fs::create_dir_all(&dir).unwrap();
    let mut table = String::from("kernel                  arch   registers  smem B  spill B\n");
    let mut problems = Vec::new();
    let mut kernels = 0;
    for (virt, real) in [("compute_80", "sm_80"), ("compute_90", "sm_90")] {
        for file in &FILES {
            let ptx = compile_ptx(file, virt).unwrap_or_else(|e| panic!("{e}"));
            let path = dir.join(format!("{}.{virt}.ptx", file.file));
            std::fs::write(&path, &ptx).unwrap();
            let out = Command::new(ptxas())
                .args(["-v", "--gpu-name", real, "-o"])
                .arg(dir.join(format!("{}.{real}.cubin", file.file)))
                .arg(&path)
                .output()
                .unwrap();
            let report = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "ptxas {real} {}:\n{report}", file.file);
            let found = parse_ptxas_report(&report, real);
            let mut names: Vec<&str> = found.iter().map(|k| k.kernel.as_str()).collect();
            names.sort_unstable();
            let mut want = file.kernels.to_vec();
            want.sort_unstable();
            assert_eq!(names, want, "{} for {real}", file.file);
            for k in found {
                kernels += 1;
                table += &format!(
                    "{:<23} {:<6} {:>9} {:>7} {:>8}\n",
                    k.kernel, k.arch, k.registers, k.shared_bytes, k.spill_bytes
                );
                if k.spill_bytes > 0 || k.shared_bytes > 48 * 1024 {
                    problems.push(format!(
                        "{} on {real}: {} bytes spilled, {} bytes smem",
                        k.kernel, k.spill_bytes, k.shared_bytes
                    ));
                }
            }
        }
    }
    eprintln!("{table}");
    std::fs::write(dir.join("resources.txt"), &table).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(kernels, 2 * FILES.iter().map(|f| f.kernels.len()).sum::<usize>());
}

#[test]
fn compiled_kernels_are_cached_per_architecture_and_source() {
    use lflow_host::train::cuda::kernels::{cache_path, cached_ptx};
    let required = std::env::var("LFLOW_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    if !lflow_host::train::cuda::nvrtc_present() {
        assert!(!required, "NVRTC missing (LD_LIBRARY_PATH) and LFLOW_REQUIRE_NVRTC=1");
        eprintln!("skipped: NVRTC not found");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kernel-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = &FILES[0];
    let (first, hit) = cached_ptx(file, "compute_80", Some(&dir)).unwrap();
    assert!(!hit, "an empty cache hit");
    let path = cache_path(&dir, file, "compute_80");
    let entry = std::fs::read_to_string(&path).unwrap();
    assert!(entry.starts_with(&first), "the PTX was not kept");
    let (again, hit) = cached_ptx(file, "compute_80", Some(&dir)).unwrap();
    assert!(hit && again == first, "the second load compiled again");
    // Another architecture is another entry; a damaged entry is compiled again and replaced.
    assert_ne!(cache_path(&dir, file, "compute_90"), path);
    std::fs::write(&path, &entry[..entry.len() / 3]).unwrap();
    let (fixed, hit) = cached_ptx(file, "compute_80", Some(&dir)).unwrap();
    assert!(!hit && fixed == first, "a truncated entry was used");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), entry);
    // Cut after its last kernel's entry line, the PTX still names every kernel: the checksum refuses it.
    std::fs::write(&path, entry.replacen("ret;", "", 1)).unwrap();
    assert!(!cached_ptx(file, "compute_80", Some(&dir)).unwrap().1, "an altered entry was used");
    // No cache folder: compiled every time.
    assert!(!cached_ptx(file, "compute_80", None).unwrap().1);
    std::fs::remove_dir_all(&dir).unwrap();
}
