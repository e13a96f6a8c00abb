//! The prefetching batch loader: a seeded epoch order, uint8 batches assembled on worker
//! threads, handed over through bounded crossbeam channels in a fixed order.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use tch::Tensor;

use crate::{DataError, Dataset, Result};

/// Settings of [`Loader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Worker threads assembling batches (≥ 1).
    pub workers: usize,
    /// Batches each worker may have ready ahead of the consumer (≥ 1).
    pub prefetch: usize,
    /// Shuffle the order every epoch (seeded); otherwise read in index order.
    pub shuffle: bool,
    /// Drop the last, smaller batch of an epoch.
    pub drop_last: bool,
    /// Seed of the epoch orders.
    pub seed: u64,
}

/// One batch: uint8 images `[B, C, H, W]`, their labels `[B]` (int64) when the dataset has
/// them, and their dataset indices.
#[derive(Debug)]
pub struct Batch {
    /// The images, uint8 `[B, C, H, W]` on the CPU.
    pub images: Tensor,
    /// The labels, int64 `[B]`, when every image has one.
    pub labels: Option<Tensor>,
    /// The dataset index of each image.
    pub indices: Vec<usize>,
}

/// Loads batches of a [`Dataset`] in a seeded order with worker threads.
///
/// Batch `b` of an epoch is assembled by worker `b mod workers` and received from that worker's
/// bounded channel, so the batches come in the same order for any number of workers, and the
/// consumer only waits when no batch is ready ([`EpochBatches::waited`] reports how long).
#[derive(Debug)]
pub struct Loader<D: ?Sized> {
    dataset: Arc<D>,
    cfg: LoaderConfig,
}

impl<D: Dataset + ?Sized + 'static> Loader<D> {
    /// A loader over `dataset`.
    ///
    /// # Errors
    /// [`DataError::Loader`] when `batch_size`, `workers` or `prefetch` is 0.
    pub fn new(dataset: Arc<D>, cfg: LoaderConfig) -> Result<Self> {
        for (field, v) in
            [("batch_size", cfg.batch_size), ("workers", cfg.workers), ("prefetch", cfg.prefetch)]
        {
            if v == 0 {
                return Err(DataError::Loader { field, reason: "must be ≥ 1" });
            }
        }
        Ok(Self { dataset, cfg })
    }

    /// Batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.dataset.len();
        if self.cfg.drop_last {
            n / self.cfg.batch_size
        } else {
            n.div_ceil(self.cfg.batch_size)
        }
    }

    /// The order of epoch `epoch`: a seeded Fisher–Yates shuffle, or `0..N`.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let n = self.dataset.len();
        let mut order: Vec<usize> = (0..n).collect();
        if self.cfg.shuffle {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(mix(self.cfg.seed, epoch));
            for i in (1..n).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
        }
        order
    }

    /// Every image in index order as one uint8 tensor `[N, C, H, W]`, with the labels `[N]`
    /// when every image has one: epoch 0's batches, read by the workers (an image folder's
    /// decoding in parallel) and joined. Meant for a loader without `shuffle`, whose order
    /// is the index order.
    ///
    /// # Errors
    /// The dataset's read error (a file that no longer decodes).
    ///
    /// # Panics
    /// When `shuffle` is set (the rows would not be in index order).
    pub fn read_all(&self) -> Result<(Tensor, Option<Tensor>)> {
        assert!(!self.cfg.shuffle, "Loader::read_all reads in index order: set shuffle: false");
        let (mut images, mut labels, mut labelled) = (Vec::new(), Vec::new(), true);
        let mut epoch = self.epoch(0);
        for batch in &mut epoch {
            images.push(batch.images);
            match batch.labels {
                Some(l) => labels.push(l),
                None => labelled = false,
            }
        }
        if let Some(e) = epoch.take_error() {
            return Err(e);
        }
        let labels = (labelled && !labels.is_empty()).then(|| Tensor::cat(&labels, 0)); // [N]
        Ok((Tensor::cat(&images, 0), labels)) // [N, C, H, W]
    }

    /// Starts the workers for epoch `epoch` and returns its batches in order.
    pub fn epoch(&self, epoch: u64) -> EpochBatches {
        self.epoch_from(epoch, 0)
    }

    /// [`Loader::epoch`] from batch `first` on (a resumed run): the same batches, with the
    /// same images and streams, as the whole epoch's from `first` on, without reading the
    /// ones before.
    pub fn epoch_from(&self, epoch: u64, first: usize) -> EpochBatches {
        let order = Arc::new(self.order(epoch));
        let total = self.batches_per_epoch();
        let first = first.min(total);
        let workers = self.cfg.workers.min((total - first).max(1));
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = bounded::<Result<Batch>>(self.cfg.prefetch);
            let (dataset, order, bs) =
                (Arc::clone(&self.dataset), Arc::clone(&order), self.cfg.batch_size);
            let epoch_seed = mix(self.cfg.seed ^ 0x005E_ED1A_A6E5, epoch);
            handles.push(std::thread::spawn(move || {
                for b in (first + w..total).step_by(workers) {
                    let indices = order[b * bs..((b + 1) * bs).min(order.len())].to_vec();
                    if tx.send(assemble(dataset.as_ref(), indices, epoch_seed)).is_err() {
                        return; // The consumer stopped early.
                    }
                }
            }));
            receivers.push(rx);
        }
        EpochBatches {
            receivers,
            handles,
            first,
            next: first,
            total,
            waited: Duration::ZERO,
            error: None,
        }
    }
}

/// Reads the images of `indices` (image `i` with the stream `mix(epoch_seed, i)`).
fn assemble<D: Dataset + ?Sized>(
    dataset: &D,
    indices: Vec<usize>,
    epoch_seed: u64,
) -> Result<Batch> {
    let [c, h, w] = dataset.image_shape();
    let size = c * h * w;
    let mut pixels = vec![0u8; indices.len() * size];
    for (out, &i) in pixels.chunks_exact_mut(size).zip(&indices) {
        dataset.try_read_image_at(i, mix(epoch_seed, i as u64), out)?;
    }
    let shape = [indices.len() as i64, c as i64, h as i64, w as i64];
    let images = Tensor::from_slice(&pixels).view(shape); // [B, C, H, W]
    let labels: Option<Vec<i64>> = indices.iter().map(|&i| dataset.label(i)).collect();
    let labels = labels.map(|l| Tensor::from_slice(&l)); // [B]
    Ok(Batch { images, labels, indices })
}

/// SplitMix64-style mixing of the seed and the epoch into one 64-bit seed.
fn mix(seed: u64, epoch: u64) -> u64 {
    let mut z = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The batches of one epoch, in order; dropping it stops the workers.
#[derive(Debug)]
pub struct EpochBatches {
    receivers: Vec<Receiver<Result<Batch>>>,
    handles: Vec<JoinHandle<()>>,
    /// The first batch read (0 unless resumed mid-epoch).
    first: usize,
    next: usize,
    total: usize,
    waited: Duration,
    /// A read error that ended the epoch early.
    error: Option<DataError>,
}

impl EpochBatches {
    /// The index of the first batch ([`Loader::epoch_from`]'s `first`).
    pub fn first(&self) -> usize {
        self.first
    }

    /// The read error that ended the epoch early (a file that no longer decodes), if any:
    /// the iterator stops at the batch that failed, and the caller asks here.
    pub fn take_error(&mut self) -> Option<DataError> {
        self.error.take()
    }

    /// Total time the consumer waited for a batch that was not ready yet.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Iterator for EpochBatches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next == self.total || self.error.is_some() {
            return None;
        }
        let rx = &self.receivers[(self.next - self.first) % self.receivers.len()];
        let batch = match rx.try_recv() {
            Ok(batch) => batch,
            Err(_) => {
                let start = Instant::now();
                let batch = rx.recv().expect("a loader worker panicked");
                self.waited += start.elapsed();
                batch
            }
        };
        self.next += 1;
        match batch {
            Ok(batch) => Some(batch),
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        self.receivers.clear(); // Unblocks workers waiting to send.
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
