//! The emulator is as strict as the hardware where a kernel's mistake would
//! pass on a lenient one: each deliberately broken kernel of
//! `host/cuda/emu/faulty.cu` gives, on the emulator, the wrong answer it
//! would give on a GPU.
#![cfg(feature = "cuda-emu")]

use lflow_host::train::cuda::emulator::EmulatedGpu;
use lflow_host::train::cuda::gpu::{Arg, DevPtr, Gpu, LaunchDims};

fn ints(gpu: &mut EmulatedGpu, n: usize) -> DevPtr {
    DevPtr { buf: gpu.alloc(n * 4).unwrap(), offset: 0 }
}

fn read(gpu: &mut EmulatedGpu, p: DevPtr, n: usize) -> Vec<i32> {
    let mut bytes = vec![0u8; n * 4];
    gpu.download(p, &mut bytes).unwrap();
    bytes.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[test]
fn a_kernel_that_depends_on_block_order_gets_the_wrong_answer() {
    let mut gpu = EmulatedGpu::new();
    let blocks = 16;
    let out = ints(&mut gpu, blocks);
    let dims = LaunchDims { grid: (blocks as u32, 1), block: 32, smem: 0 };
    gpu.launch("faulty_block_chain", dims, &[Arg::Ptr(out)]).unwrap();
    // Blocks run one after another in order: 1, 2, ..., 16. Any other order breaks the chain.
    let in_order: Vec<i32> = (1..=blocks as i32).collect();
    let got = read(&mut gpu, out, blocks);
    assert_ne!(got, in_order, "blocks ran in order: a block-order dependence would pass");
    // Every block still ran once: each value is 1 plus its predecessor's at the time, at least 1.
    assert!(got.iter().all(|v| (1..=blocks as i32).contains(v)), "{got:?}");
}

#[test]
fn a_shuffle_reads_its_own_warp_only() {
    let mut gpu = EmulatedGpu::new();
    let threads = 80; // two full warps and a partial one
    let out = ints(&mut gpu, threads);
    let dims = LaunchDims { grid: (1, 1), block: threads as u32, smem: 0 };
    gpu.launch("faulty_block_broadcast", dims, &[Arg::Ptr(out)]).unwrap();
    // A block-wide broadcast would give 7 everywhere; a GPU gives each warp its lane 0's value.
    let want: Vec<i32> = (0..threads).map(|t| (t / 32 * 32) as i32 * 10 + 7).collect();
    assert_eq!(read(&mut gpu, out, threads), want);
}

#[test]
fn a_write_past_a_buffer_is_reported_with_the_kernel_and_the_buffer() {
    let mut gpu = EmulatedGpu::new();
    let n = 100usize;
    let out = DevPtr { buf: gpu.alloc(n * 4).unwrap(), offset: 0 };
    let dims = LaunchDims { grid: (4, 1), block: 32, smem: 0 };
    let err = gpu.launch("faulty_out_of_bounds", dims, &[Arg::Ptr(out), Arg::I32(n as i32)]).unwrap_err().to_string();
    assert!(
        err.contains("faulty_out_of_bounds") && err.contains("at byte offset 400") && err.contains("its 400 bytes"),
        "{err}"
    );
    // The same kernel within bounds (n - 1 as the last index) passes, and the guard was restored.
    gpu.launch("faulty_out_of_bounds", dims, &[Arg::Ptr(out), Arg::I32(n as i32 - 1)]).unwrap();
}

/// Launch `kernel(out, sync)` on one block of `threads`; the error, if any.
fn race(kernel: &'static str, threads: u32, sync: bool) -> Result<Vec<f32>, String> {
    let mut gpu = EmulatedGpu::new();
    let out = DevPtr { buf: gpu.alloc(threads as usize * 4).unwrap(), offset: 0 };
    let dims = LaunchDims { grid: (1, 1), block: threads, smem: 0 };
    gpu.launch(kernel, dims, &[Arg::Ptr(out), Arg::I32(sync as i32)]).map_err(|e| e.to_string())?;
    let mut bytes = vec![0u8; threads as usize * 4];
    gpu.download(out, &mut bytes).unwrap();
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}

#[test]
fn a_missing_syncthreads_is_a_race_named_with_kernel_address_and_threads() {
    let err = race("faulty_missing_sync", 64, false).unwrap_err();
    assert!(err.contains("shared-memory race in faulty_missing_sync at static byte"), "{err}");
    assert!(err.contains("thread") && err.contains("no __syncthreads between"), "{err}");
    // With the barrier: no race, and each thread reads its neighbour's index.
    let got = race("faulty_missing_sync", 64, true).unwrap();
    assert_eq!(got, (0..64).map(|t| ((t + 1) % 64) as f32).collect::<Vec<_>>());
}

#[test]
fn a_shuffle_does_not_order_shared_memory_across_warps() {
    let err = race("faulty_shuffle_as_barrier", 64, false).unwrap_err();
    assert!(err.contains("shared-memory race in faulty_shuffle_as_barrier"), "{err}");
    // Warp 1 posted 2; thread 0's shuffle read its own lane 0 (0).
    assert_eq!(race("faulty_shuffle_as_barrier", 64, true).unwrap()[0], 2.0);
}

#[test]
fn a_barrier_that_returned_threads_never_reach_fails_instead_of_hanging() {
    let err = race("faulty_divergent_barrier", 64, true).unwrap_err();
    assert!(err.contains("__syncthreads reached by threads of a block whose other threads had returned"), "{err}");
    // sync = 2: a shuffle in a warp whose upper lanes returned.
    let mut gpu = EmulatedGpu::new();
    let out = DevPtr { buf: gpu.alloc(64 * 4).unwrap(), offset: 0 };
    let dims = LaunchDims { grid: (2, 1), block: 64, smem: 0 };
    let err = gpu.launch("faulty_divergent_barrier", dims, &[Arg::Ptr(out), Arg::I32(2)]).unwrap_err().to_string();
    assert!(err.contains("a shuffle reached by lanes of a warp whose other lanes had returned"), "{err}");
    // No barrier after the return (sync = 0): a kernel whose threads return early is fine.
    assert!(race("faulty_divergent_barrier", 64, false).is_ok());
}

/// Stream capture as CUDA does it: recording runs nothing; a replay runs the
/// recorded work on the buffers' contents at replay time; a copy to or from
/// the host during capture is refused and invalidates the capture; a graph
/// whose buffer was freed does not replay.
#[test]
fn a_graph_runs_nothing_when_recorded_and_its_work_on_current_memory_when_replayed() {
    use lflow_host::train::cuda::gpu::{download_f32, upload_f32};
    let mut gpu = EmulatedGpu::new();
    let (x, bias) = (ints(&mut gpu, 4), ints(&mut gpu, 2));
    upload_f32(&mut gpu, x, &[1.0, 2.0, 3.0, 4.0]).unwrap();
    upload_f32(&mut gpu, bias, &[10.0, 20.0]).unwrap();
    let dims = LaunchDims { grid: (1, 1), block: 32, smem: 0 };
    let args = [Arg::Ptr(x), Arg::Ptr(bias), Arg::I32(2), Arg::I32(2)];
    gpu.begin_capture().unwrap();
    gpu.launch("add_bias", dims, &args).unwrap();
    let graph = gpu.end_capture().unwrap();
    let mut got = [0.0f32; 4];
    download_f32(&mut gpu, x, &mut got).unwrap();
    assert_eq!(got, [1.0, 2.0, 3.0, 4.0], "recording ran the kernel");
    gpu.replay(graph).unwrap();
    upload_f32(&mut gpu, bias, &[100.0, 200.0]).unwrap();
    gpu.replay(graph).unwrap();
    download_f32(&mut gpu, x, &mut got).unwrap();
    assert_eq!(got, [111.0, 222.0, 113.0, 224.0], "the second replay read the bias as uploaded after capture");
    assert_eq!((gpu.captures(), gpu.replays(), gpu.graph_len(graph)), (1, 2, Some(1)));

    gpu.begin_capture().unwrap();
    let refused = gpu.download(x, &mut [0u8; 4]).unwrap_err().to_string();
    assert!(refused.contains("during stream capture"), "{refused}");
    let invalid = gpu.end_capture().unwrap_err().to_string();
    assert!(invalid.contains("capture invalidated by download"), "{invalid}");

    gpu.free(bias.buf);
    let stale = gpu.replay(graph).unwrap_err().to_string();
    assert!(stale.contains("not allocated"), "{stale}");
}
