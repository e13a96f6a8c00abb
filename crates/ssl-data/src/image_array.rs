//! Fixed-size images held in memory, channel-major, with optional labels: what the CIFAR and
//! STL-10 readers return.

use crate::Dataset;

/// `N` images of one shape `[C, H, W]` as bytes (image after image, each channel-major,
/// rows top to bottom), with an int64 label per image when the set has labels.
#[derive(Debug, Clone)]
pub struct ImageArray {
    pixels: Vec<u8>,
    shape: [usize; 3],
    labels: Option<Vec<i64>>,
}

impl ImageArray {
    /// Wraps `pixels` (`N · C · H · W` bytes) and optional labels (`N` of them).
    ///
    /// # Panics
    /// When the lengths disagree (the readers check their files before building one).
    pub fn new(pixels: Vec<u8>, shape: [usize; 3], labels: Option<Vec<i64>>) -> Self {
        let size: usize = shape.iter().product();
        assert!(
            size > 0 && pixels.len().is_multiple_of(size),
            "ImageArray: {} bytes",
            pixels.len()
        );
        if let Some(l) = &labels {
            assert_eq!(l.len(), pixels.len() / size, "ImageArray: one label per image");
        }
        Self { pixels, shape, labels }
    }

    /// The pixels of image `i`, `C · H · W` bytes.
    ///
    /// # Panics
    /// When `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let size: usize = self.shape.iter().product();
        &self.pixels[i * size..(i + 1) * size]
    }

    /// The labels, when the set has them.
    pub fn labels(&self) -> Option<&[i64]> {
        self.labels.as_deref()
    }
}

impl Dataset for ImageArray {
    fn len(&self) -> usize {
        self.pixels.len() / self.shape.iter().product::<usize>()
    }

    fn image_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn read_image(&self, index: usize, out: &mut [u8]) {
        out.copy_from_slice(self.image(index));
    }

    fn label(&self, index: usize) -> Option<i64> {
        self.labels.as_ref().map(|l| l[index])
    }
}
