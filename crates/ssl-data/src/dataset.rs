//! The `Dataset` trait: random access to fixed-size uint8 images and optional labels.

use std::path::PathBuf;

use crate::{IdxImages, Result};

/// A set of images of one shape, read by index from any thread.
///
/// Labels are optional everywhere: pre-training never asks for them.
pub trait Dataset: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;

    /// Whether the set has no image.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[C, H, W]` of every image.
    fn image_shape(&self) -> [usize; 3];

    /// Copies image `index` into `out` (`C·H·W` bytes, channel-major).
    ///
    /// # Panics
    /// When `index >= len()` or `out` has the wrong length.
    fn read_image(&self, index: usize, out: &mut [u8]);

    /// [`Dataset::read_image`] for datasets whose reading is random (an image folder's
    /// per-image random crop): `stream` seeds it, and the loader passes one per image and
    /// epoch, so the same seed reads the same pixels. Deterministic datasets ignore it.
    ///
    /// # Panics
    /// As [`Dataset::read_image`].
    fn read_image_at(&self, index: usize, stream: u64, out: &mut [u8]) {
        let _ = stream;
        self.read_image(index, out);
    }

    /// [`Dataset::read_image_at`] that returns an error naming the file when an image no
    /// longer reads (an image folder's corrupt file under [`crate::OnCorrupt::Fail`]) instead of
    /// panicking; the loader reads through this one.
    ///
    /// # Errors
    /// The dataset's read error; the default never fails.
    fn try_read_image_at(&self, index: usize, stream: u64, out: &mut [u8]) -> Result<()> {
        self.read_image_at(index, stream, out);
        Ok(())
    }

    /// The files left out so far because they did not decode ([`crate::OnCorrupt::Skip`]), sorted;
    /// none for sets held in memory.
    fn skipped(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// The label of image `index`, when the set has labels.
    fn label(&self, index: usize) -> Option<i64>;
}

impl Dataset for IdxImages {
    fn len(&self) -> usize {
        IdxImages::len(self)
    }

    fn image_shape(&self) -> [usize; 3] {
        [1, self.height(), self.width()]
    }

    fn read_image(&self, index: usize, out: &mut [u8]) {
        out.copy_from_slice(self.image(index));
    }

    fn label(&self, index: usize) -> Option<i64> {
        self.labels().map(|l| i64::from(l[index]))
    }
}
