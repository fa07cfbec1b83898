//! With the `cuda-emu` feature, compiles the CUDA kernels of `cuda/` for the
//! CPU (against `cuda/emu/shim.h`) so tests can run them without a GPU.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
