//! How a pipeline cuts a CPU batch into cache-sized chunks, and spreads them over threads.

use std::sync::{Mutex, OnceLock};

use tch::{Device, Tensor};

/// Bytes of f32 pixels per chunk when the chunks run one after another: small enough that a
/// chunk stays in cache between the ops of a pipeline, large enough that libtorch's per-call
/// cost is amortised. (2-core EPYC, SimCLR views at 96 px: chunks of 32 samples, 3.5 MiB, ran
/// 1.45× faster than the whole batch of 256.)
pub(crate) const CHUNK_BYTES: i64 = 4 << 20;

/// Bytes of f32 pixels per chunk when the chunks are spread over threads, one single-threaded
/// chunk at a time on each. (Same machine, 96 px views: 1, 2 and 4 MiB within noise.)
pub(crate) const PARALLEL_CHUNK_BYTES: i64 = 2 << 20;

/// The type of OpenMP's `omp_set_num_threads`.
pub(crate) type SetThreads = extern "C" fn(libc::c_int);

/// A batch's chunks `(start, len)` and how many threads they are spread over (1: the calling
/// thread applies them in order, each op with libtorch's own threads).
#[derive(Debug, PartialEq)]
pub(crate) struct Plan {
    pub chunks: Vec<(i64, i64)>,
    pub workers: usize,
}

/// Largest stage's f32 bytes per sample, over the stage shapes `[N, ...]` of a pipeline.
fn bytes_per_sample(shapes: &[Vec<i64>]) -> i64 {
    shapes.iter().map(|s| s[1..].iter().product::<i64>() * 4).max().unwrap_or(1).max(1)
}

/// `⌈a / b⌉` for `a ≥ 0`, `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// `n` samples cut into `count` runs `(start, len)` whose lengths differ by at most one.
pub(crate) fn even_runs(n: i64, count: i64) -> Vec<(i64, i64)> {
    let count = count.clamp(1, n.max(1));
    let (base, extra) = (n / count, n % count);
    let mut start = 0;
    (0..count)
        .map(|k| {
            let len = base + i64::from(k < extra);
            start += len;
            (start - len, len)
        })
        .collect()
}

/// The plan for a batch of `n` samples whose stages have `shapes`, on `device`, with `threads`
/// libtorch threads; `spreadable` says whether a thread can be made single-threaded
/// ([`omp_set_num_threads`]).
///
/// On the CPU a batch of at least one [`PARALLEL_CHUNK_BYTES`] chunk per thread is cut into a
/// multiple of `threads` equal chunks of at most about that size, spread over the threads;
/// smaller batches into [`CHUNK_BYTES`] chunks run in order. On CUDA the batch is one chunk.
pub(crate) fn plan(
    shapes: &[Vec<i64>],
    n: i64,
    device: Device,
    threads: usize,
    spreadable: bool,
) -> Plan {
    if device != Device::Cpu {
        return Plan { chunks: vec![(0, n)], workers: 1 };
    }
    let total = bytes_per_sample(shapes) * n;
    let t = threads as i64;
    if spreadable && t > 1 && total >= t * PARALLEL_CHUNK_BYTES {
        let count = ceil_div(ceil_div(total, PARALLEL_CHUNK_BYTES), t) * t;
        return Plan { chunks: even_runs(n, count), workers: threads };
    }
    Plan { chunks: even_runs(n, ceil_div(total, CHUNK_BYTES)), workers: 1 }
}

/// OpenMP's `omp_set_num_threads`, when libtorch's OpenMP runtime is loaded: called with 1 on
/// a thread, it makes libtorch's CPU ops there single-threaded, as it sets only the calling
/// thread's OpenMP count (libtorch's `set_num_threads` would also change MKL's count for every
/// thread). `None` without OpenMP: chunks then run one after another.
pub(crate) fn omp_set_num_threads() -> Option<SetThreads> {
    static SET: OnceLock<Option<SetThreads>> = OnceLock::new();
    *SET.get_or_init(|| {
        #[allow(unsafe_code)]
        // SAFETY: dlsym with RTLD_DEFAULT only looks a symbol up among the loaded objects;
        // `omp_set_num_threads` is OpenMP's `void omp_set_num_threads(int)`, the type cast to.
        unsafe {
            let f = libc::dlsym(libc::RTLD_DEFAULT, c"omp_set_num_threads".as_ptr());
            (!f.is_null()).then(|| std::mem::transmute::<*mut libc::c_void, SetThreads>(f))
        }
    })
}

/// `apply(chunk, start)` of every chunk `(start, samples)` of a batch, on `workers` threads
/// that each first call `set_threads(1)`, written into one tensor of `size` (the output's
/// shape): the concatenation of the outputs in order.
///
/// Chunk `k` goes to thread `k % workers`. The threads also write their outputs into the
/// result, so the calling thread runs no libtorch op: its OpenMP threads, which spin for some
/// milliseconds after each parallel call, stay off the cores the workers need. (Concatenating
/// on the calling thread instead made 32 px SimCLR views 1.6× slower.)
pub(crate) fn spread<F>(
    chunks: Vec<(i64, Tensor)>,
    size: &[i64],
    workers: usize,
    set_threads: SetThreads,
    apply: F,
) -> Tensor
where
    F: Fn(&Tensor, i64) -> Tensor + Sync,
{
    let mut shares: Vec<Vec<(i64, Tensor)>> = (0..workers).map(|_| Vec::new()).collect();
    for (k, chunk) in chunks.into_iter().enumerate() {
        shares[k % workers].push(chunk);
    }
    let out: Mutex<Option<Tensor>> = Mutex::new(None);
    let (out_ref, apply) = (&out, &apply);
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                scope.spawn(move || {
                    set_threads(1);
                    for (start, c) in share {
                        let y = apply(&c, start);
                        let dst = out_ref
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert_with(|| Tensor::empty(size, (y.kind(), y.device())))
                            .shallow_clone();
                        dst.narrow(0, start, y.size()[0]).copy_(&y);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        }
    });
    out.into_inner().unwrap_or_else(|e| e.into_inner()).expect("a batch has a chunk")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn runs_cover_the_batch_in_near_equal_lengths() {
        assert_eq!(even_runs(10, 3), [(0, 4), (4, 3), (7, 3)]);
        assert_eq!(even_runs(2, 5), [(0, 1), (1, 1)]);
        assert_eq!(even_runs(7, 1), [(0, 7)]);
        assert_eq!(even_runs(0, 4), [(0, 0)]);
    }

    #[test]
    fn large_batches_are_spread_small_ones_run_in_order() {
        let cpu = Device::Cpu;
        // Fashion-MNIST views, 512 × 1 × 28 × 28 f32: 1.5 MiB, one chunk on the calling thread.
        let small = [vec![512, 1, 28, 28], vec![512, 1, 16, 16]];
        assert_eq!(plan(&small, 512, cpu, 2, true), Plan { chunks: vec![(0, 512)], workers: 1 });
        // 96 px views of 256 samples: 27 MiB, 14 chunks of 18–19 samples (~2 MiB) on 2 threads.
        let large = [vec![256, 3, 96, 96], vec![256, 3, 64, 64]];
        let p = plan(&large, 256, cpu, 2, true);
        assert_eq!(p, Plan { chunks: even_runs(256, 14), workers: 2 });
        // Three threads: a multiple of three chunks.
        assert_eq!(plan(&large, 256, cpu, 3, true).chunks.len(), 15);
        // Without a per-thread switch or with one thread: 4 MiB chunks in order; CUDA: one.
        let in_order = Plan { chunks: even_runs(256, 7), workers: 1 };
        assert_eq!(plan(&large, 256, cpu, 2, false), in_order);
        assert_eq!(plan(&large, 256, cpu, 1, true), in_order);
        assert_eq!(plan(&large, 256, Device::Cuda(0), 2, true).chunks, [(0, 256)]);
    }

    #[test]
    fn a_worker_runs_libtorch_on_one_thread_and_the_caller_keeps_its_count() {
        let set = omp_set_num_threads().expect("libtorch's OpenMP runtime is loaded");
        let before = tch::get_num_threads();
        let inside = std::thread::spawn(move || {
            set(1);
            let _ = Tensor::rand([1 << 20], (Kind::Float, Device::Cpu)).exp();
            tch::get_num_threads()
        })
        .join()
        .unwrap();
        assert_eq!(inside, 1);
        assert_eq!(tch::get_num_threads(), before);
    }

    #[test]
    fn spread_chunks_land_in_order() {
        let x = Tensor::arange(30, (Kind::Float, Device::Cpu)).view([10, 3]);
        let chunks = even_runs(10, 4).into_iter().map(|(s, l)| (s, x.narrow(0, s, l))).collect();
        let set = omp_set_num_threads().expect("libtorch's OpenMP runtime is loaded");
        let y = spread(chunks, &[10, 3], 2, set, |c, start| c * 2 + start as f64);
        let starts = Tensor::from_slice(&[0f32, 0., 0., 3., 3., 3., 6., 6., 8., 8.]).view([10, 1]);
        assert!(y.equal(&(&x * 2 + starts)));
    }
}
