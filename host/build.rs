//! With the `cuda-emu` feature, compiles the CUDA kernels of `cuda/` for the
//! CPU (against `cuda/emu/shim.h`) so tests can run them without a GPU; and
//! records the target triple, which the firmware's host twin is built for.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The firmware's host twin is built for the triple this crate is built for.
    println!("cargo:rustc-env=LFLOW_HOST_TARGET={}", std::env::var("TARGET").unwrap_or_default());
    #[cfg(feature = "cuda-emu")]
    {
        for entry in std::fs::read_dir("cuda").into_iter().flatten().flatten() {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
        println!("cargo:rerun-if-changed=cuda/emu");
        cc::Build::new()
            .cpp(true)
            .file("cuda/emu/emulator.cpp")
            .std("c++20")
            .flag("-pthread")
            .opt_level(2)
            .warnings(false)
            .compile("lflow_cuda_emu");
        println!("cargo:rustc-link-lib=pthread");
    }
}
