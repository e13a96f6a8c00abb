//! The loader: order, determinism across worker counts, coverage, labels and early stops.

use std::sync::Arc;

use ssl_data::{Dataset, Loader, LoaderConfig};

/// `n` 1×1×2 images whose pixels encode their index; labels `index mod 3` when asked.
#[derive(Debug)]
struct Numbered {
    n: usize,
    labelled: bool,
}

impl Dataset for Numbered {
    fn len(&self) -> usize {
        self.n
    }
    fn image_shape(&self) -> [usize; 3] {
        [1, 1, 2]
    }
    fn read_image(&self, index: usize, out: &mut [u8]) {
        out.copy_from_slice(&[(index % 256) as u8, (index / 256) as u8]);
    }
    fn label(&self, index: usize) -> Option<i64> {
        self.labelled.then_some((index % 3) as i64)
    }
}

fn cfg(batch_size: usize, workers: usize, shuffle: bool, drop_last: bool) -> LoaderConfig {
    LoaderConfig { batch_size, workers, prefetch: 2, shuffle, drop_last, seed: 7 }
}

fn loader(n: usize, labelled: bool, c: LoaderConfig) -> Loader<Numbered> {
    Loader::new(Arc::new(Numbered { n, labelled }), c).unwrap()
}

fn decoded(images: &tch::Tensor) -> Vec<usize> {
    let v = Vec::<u8>::try_from(images.flatten(0, -1)).unwrap();
    v.chunks(2).map(|p| p[0] as usize + 256 * p[1] as usize).collect()
}

#[test]
fn unshuffled_batches_follow_the_index_order_and_keep_the_remainder() {
    let l = loader(10, true, cfg(4, 2, false, false));
    assert_eq!(l.batches_per_epoch(), 3);
    let batches: Vec<_> = l.epoch(0).collect();
    let seen: Vec<usize> = batches.iter().flat_map(|b| decoded(&b.images)).collect();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(batches[2].images.size(), [2, 1, 1, 2]);
    let labels = Vec::<i64>::try_from(batches[0].labels.as_ref().unwrap()).unwrap();
    assert_eq!(labels, [0, 1, 2, 0]);
}

#[test]
fn shuffled_epochs_are_permutations_fixed_by_seed_and_epoch_whatever_the_workers() {
    let one = loader(1000, false, cfg(64, 1, true, true));
    let three = loader(1000, false, cfg(64, 3, true, true));
    let a: Vec<usize> = one.epoch(4).flat_map(|b| decoded(&b.images)).collect();
    let b: Vec<usize> = three.epoch(4).flat_map(|b| b.indices).collect();
    assert_eq!(a, b, "same order with 1 and 3 workers");
    assert_eq!(a.len(), 15 * 64, "drop_last drops the 40 left over");
    let mut full = one.order(4);
    assert_ne!(full, (0..1000).collect::<Vec<_>>());
    full.sort_unstable();
    assert_eq!(full, (0..1000).collect::<Vec<_>>());
    assert_ne!(one.order(4), one.order(5));
    assert!(one.epoch(0).next().unwrap().labels.is_none());
}

#[test]
fn stopping_early_ends_the_workers_and_zero_sizes_are_errors() {
    let l = loader(10_000, false, cfg(10, 2, true, false));
    let mut epoch = l.epoch(0);
    let first = epoch.next().unwrap();
    assert_eq!(first.indices.len(), 10);
    drop(epoch); // Must return: the workers see the closed channels.
    let err = Loader::new(Arc::new(Numbered { n: 1, labelled: false }), cfg(0, 1, false, false));
    assert!(err.unwrap_err().to_string().contains("batch_size"));
}

#[test]
fn an_epoch_from_a_batch_on_is_the_tail_of_the_whole_epoch() {
    for workers in [1, 3] {
        let l = loader(1000, false, cfg(64, workers, true, true));
        let whole: Vec<Vec<usize>> = l.epoch(2).map(|b| b.indices).collect();
        let tail: Vec<Vec<usize>> = l.epoch_from(2, 5).map(|b| b.indices).collect();
        assert_eq!(tail, whole[5..], "{workers} workers");
        assert_eq!(l.epoch_from(2, 15).count(), 0, "from the end: nothing");
    }
    let all = loader(10, false, cfg(4, 2, false, false)).read_all().unwrap();
    assert_eq!((decoded(&all.0), all.1.is_none()), ((0..10).collect(), true));
}
