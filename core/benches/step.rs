//! One decoder step of the reference MCU configuration (N_IN=137, H=64, D=192,
//! FF=256, N_OUT=182, W=32, N_BEH=2) in f32, f16 and i8 storage, with the tuned
//! kernels against the naive kernel in the same run. Throughput is in MACs
//! (criterion's "elements"), so Gelem/s reads as MACs per ns.
//!
//! `cargo bench -p lflow-core --features std`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lflow_core::blob::{BlobWriter, Tensor};
use lflow_core::{InputSchedule, Kernel, Mean, Seeded, StorageFormat, StreamingDecoder};
use std::hint::black_box;
use std::time::Duration;

type Mcu<'a> = StreamingDecoder<'a, 137, 64, 192, 256, 182, 32, 2>;

/// Random finite weights of the reference configuration, 16-byte aligned.
fn blob(storage: StorageFormat) -> Vec<u128> {
    let dims = Mcu::DIMS;
    let mut rng = Seeded::new(17);
    let mut w = BlobWriter::new(dims, storage, InputSchedule::CurrentBin, 0.55, 0.01).unwrap();
    for t in Tensor::ALL {
        let (r, c) = t.shape(&dims);
        let scale = 1.0 / (c.max(1) as f32).sqrt();
        let vals: Vec<f32> = (0..r * c).map(|_| rng.next_normal() * scale).collect();
        w.tensor(t, &vals).unwrap();
    }
    let bytes = w.finish().unwrap();
    let mut words = vec![0u128; bytes.len().div_ceil(16)];
    bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
    words.push(bytes.len() as u128);
    words
}

fn bytes(words: &[u128]) -> &[u8] {
    let (len, data) = words.split_last().unwrap();
    &bytemuck::cast_slice::<u128, u8>(data)[..*len as usize]
}

fn bench_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("step");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    let spikes: Vec<[u16; 137]> = (0..64).map(|t| std::array::from_fn(|i| ((i * 7 + t * 3) % 5) as u16)).collect();
    for storage in [StorageFormat::F32, StorageFormat::F16, StorageFormat::I8] {
        let words = blob(storage);
        let mut dec = Box::new(Mcu::from_blob(bytes(&words)).unwrap());
        group.throughput(Throughput::Elements(dec.macs_per_step() as u64));
        for kernel in [Kernel::Tuned, Kernel::Naive] {
            dec.set_kernel(kernel);
            dec.reset();
            let mut t = 0usize;
            let id = BenchmarkId::new(format!("{storage:?}"), format!("{kernel:?}"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    // Trials of 64 bins, as trained: the latent dynamics are not
                    // meant to run unbounded (with random weights they drift).
                    t = (t + 1) % spikes.len();
                    if t == 0 {
                        dec.reset();
                    }
                    let out = dec.step(black_box(&spikes[t]), &mut Mean).unwrap();
                    black_box(out.rates[0])
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_step);
criterion_main!(benches);
