//! A contiguous range of another dataset's images, e.g. the training images that a held-out
//! split leaves for pre-training.

use std::ops::Range;
use std::sync::Arc;

use crate::{DataError, Dataset, Result};

/// Images `range` of `inner`, re-indexed from 0.
#[derive(Debug)]
pub struct Subset<D: ?Sized> {
    inner: Arc<D>,
    range: Range<usize>,
}

impl<D: Dataset + ?Sized> Subset<D> {
    /// The images `range` of `inner`.
    ///
    /// # Errors
    /// [`DataError::Loader`] when `range` is empty or runs past the dataset's end.
    pub fn new(inner: Arc<D>, range: Range<usize>) -> Result<Self> {
        if range.is_empty() || range.end > inner.len() {
            return Err(DataError::Loader {
                field: "subset range",
                reason: "must be non-empty and inside the dataset",
            });
        }
        Ok(Self { inner, range })
    }
}

impl<D: Dataset + ?Sized> Dataset for Subset<D> {
    fn len(&self) -> usize {
        self.range.len()
    }

    fn image_shape(&self) -> [usize; 3] {
        self.inner.image_shape()
    }

    fn read_image(&self, index: usize, out: &mut [u8]) {
        assert!(index < self.len(), "subset: index {index} out of {} images", self.len());
        self.inner.read_image(self.range.start + index, out);
    }

    fn read_image_at(&self, index: usize, stream: u64, out: &mut [u8]) {
        assert!(index < self.len(), "subset: index {index} out of {} images", self.len());
        self.inner.read_image_at(self.range.start + index, stream, out);
    }

    fn try_read_image_at(&self, index: usize, stream: u64, out: &mut [u8]) -> Result<()> {
        assert!(index < self.len(), "subset: index {index} out of {} images", self.len());
        self.inner.try_read_image_at(self.range.start + index, stream, out)
    }

    fn skipped(&self) -> Vec<std::path::PathBuf> {
        self.inner.skipped()
    }

    fn label(&self, index: usize) -> Option<i64> {
        self.inner.label(self.range.start + index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Six 1×2 images whose pixels are 10·i and 10·i + 1, with label i.
    struct Six;

    impl Dataset for Six {
        fn len(&self) -> usize {
            6
        }
        fn image_shape(&self) -> [usize; 3] {
            [1, 1, 2]
        }
        fn read_image(&self, index: usize, out: &mut [u8]) {
            out.copy_from_slice(&[10 * index as u8, 10 * index as u8 + 1]);
        }
        fn label(&self, index: usize) -> Option<i64> {
            Some(index as i64)
        }
    }

    #[test]
    fn a_subset_reads_the_images_and_labels_of_its_range() {
        let set = Arc::new(Six);
        let sub = Subset::new(Arc::clone(&set), 2..5).unwrap();
        assert_eq!((sub.len(), sub.image_shape()), (3, [1, 1, 2]));
        let mut out = [0u8; 2];
        sub.read_image(0, &mut out);
        assert_eq!(out, [20, 21]);
        sub.read_image_at(2, 7, &mut out);
        assert_eq!(out, [40, 41]);
        assert_eq!(sub.label(1), Some(3));
        assert!(Subset::new(Arc::clone(&set), 4..7).is_err());
        assert!(Subset::new(set, 3..3).is_err());
    }
}
