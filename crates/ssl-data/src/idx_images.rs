//! Grayscale image sets stored as IDX files (MNIST, Fashion-MNIST), with optional labels.

use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::{read_idx, DataError, Result};

/// Which part of a dataset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Split {
    /// The training set (`train-*`), 60,000 images for Fashion-MNIST.
    Train,
    /// The test set (`t10k-*`), 10,000 images for Fashion-MNIST.
    Test,
}

/// `N` grayscale `H × W` images as bytes, with labels when a label file was given.
#[derive(Debug, Clone)]
pub struct IdxImages {
    pixels: Vec<u8>,
    len: usize,
    height: usize,
    width: usize,
    labels: Option<Vec<u8>>,
}

impl IdxImages {
    /// Reads a 3-D image file `[N, H, W]` and, optionally, a 1-D label file `[N]`.
    ///
    /// # Errors
    /// The errors of [`read_idx`], [`DataError::Rank`] for arrays of the wrong rank and
    /// [`DataError::CountMismatch`] when the two files disagree on N.
    pub fn from_files(images: &Path, labels: Option<&Path>) -> Result<Self> {
        let img = read_idx(images)?;
        let [len, height, width] = img.dims[..] else {
            return Err(DataError::Rank { path: images.into(), expected: 3, dims: img.dims });
        };
        let labels = match labels {
            None => None,
            Some(path) => {
                let lab = read_idx(path)?;
                if lab.dims.len() != 1 {
                    return Err(DataError::Rank { path: path.into(), expected: 1, dims: lab.dims });
                }
                if lab.dims[0] != len {
                    return Err(DataError::CountMismatch {
                        images: images.into(),
                        labels: path.into(),
                        n_images: len,
                        n_labels: lab.dims[0],
                    });
                }
                Some(lab.data)
            }
        };
        Ok(Self { pixels: img.data, len, height, width, labels })
    }

    /// Fashion-MNIST (or MNIST, or any set named the same way) from `dir` as the Debian
    /// package and the original releases lay it out:
    /// `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`, or the same names without `.gz`
    /// when only those exist (the files unpacked).
    ///
    /// # Errors
    /// As [`IdxImages::from_files`] (a missing file is named with its `.gz`).
    pub fn fashion_mnist(dir: impl AsRef<Path>, split: Split) -> Result<Self> {
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let file = |kind: &str| -> PathBuf {
            let gz = dir.as_ref().join(format!("{prefix}-{kind}-ubyte.gz"));
            let raw = gz.with_extension("");
            if !gz.exists() && raw.exists() {
                raw
            } else {
                gz
            }
        };
        Self::from_files(&file("images-idx3"), Some(&file("labels-idx1")))
    }

    /// N, the number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// H, the image height.
    pub fn height(&self) -> usize {
        self.height
    }

    /// W, the image width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// All pixels, image after image, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixels of image `i`.
    ///
    /// # Panics
    /// When `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.height * self.width;
        &self.pixels[i * size..(i + 1) * size]
    }

    /// The labels, when a label file was read.
    pub fn labels(&self) -> Option<&[u8]> {
        self.labels.as_deref()
    }

    /// The labels as an int64 tensor `[N]`, when a label file was read.
    pub fn labels_tensor(&self) -> Option<Tensor> {
        self.labels.as_deref().map(|l| Tensor::from_slice(l).to_kind(tch::Kind::Int64))
        // [N]
    }

    /// All images as one uint8 tensor `[N, 1, H, W]`.
    pub fn to_tensor(&self) -> Tensor {
        let shape = [self.len as i64, 1, self.height as i64, self.width as i64];
        Tensor::from_slice(&self.pixels).view(shape) // [N, 1, H, W]
    }
}
