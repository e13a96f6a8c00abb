//! STL-10 in its binary release (`stl10_binary`): 96 × 96 RGB images, 100,000 unlabelled for
//! pre-training, 5,000 labelled for training and 8,000 for testing (Coates, Lee, Ng, AISTATS
//! 2011).

use std::path::Path;

use crate::records::{check_records, read_records};
use crate::{DataError, ImageArray, Result};

/// The side of an STL-10 image.
const SIDE: usize = 96;
/// Bytes of one image.
const PIXELS: usize = 3 * SIDE * SIDE;

/// Which STL-10 file set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stl10Split {
    /// `unlabeled_X.bin`: 100,000 images without labels.
    Unlabeled,
    /// `train_X.bin` and `train_y.bin`: 5,000 labelled images.
    Train,
    /// `test_X.bin` and `test_y.bin`: 8,000 labelled images.
    Test,
}

/// Reads `split` from `dir`: images `[3, 96, 96]` and, for `Train` and `Test`, labels 0–9
/// (the files' 1–10 less one).
///
/// The files store each channel column by column (MATLAB's order); the images come out row by
/// row, as every other set here.
///
/// # Errors
/// [`DataError::Io`] naming a missing or unreadable file, [`DataError::Format`] naming an
/// image file that is empty or truncated, or a label file with a label outside 1–10, and
/// [`DataError::CountMismatch`] when the images and labels differ in number.
pub fn read_stl10(dir: impl AsRef<Path>, split: Stl10Split) -> Result<ImageArray> {
    let dir = dir.as_ref();
    let prefix = match split {
        Stl10Split::Unlabeled => "unlabeled",
        Stl10Split::Train => "train",
        Stl10Split::Test => "test",
    };
    let x_path = dir.join(format!("{prefix}_X.bin"));
    let x = read_records(&x_path, PIXELS, "STL-10 image")?;
    let y_path = dir.join(format!("{prefix}_y.bin"));
    let y = match split {
        Stl10Split::Unlabeled => None,
        _ => Some(read_records(&y_path, 1, "STL-10 label")?),
    };
    parse_stl10(&x, y.as_deref(), &x_path, &y_path)
}

/// [`read_stl10`] of bytes already read: the image file's `x` and, for a labelled part, the
/// label file's `y` (`x_path` and `y_path` name them in errors).
///
/// # Errors
/// As [`read_stl10`], but for I/O.
pub fn parse_stl10(x: &[u8], y: Option<&[u8]>, x_path: &Path, y_path: &Path) -> Result<ImageArray> {
    check_records(x, x_path, PIXELS, "STL-10 image")?;
    let mut pixels = vec![0u8; x.len()];
    for (src, dst) in x.chunks_exact(PIXELS).zip(pixels.chunks_exact_mut(PIXELS)) {
        for c in 0..3 {
            let plane = c * SIDE * SIDE;
            for col in 0..SIDE {
                for row in 0..SIDE {
                    dst[plane + row * SIDE + col] = src[plane + col * SIDE + row];
                }
            }
        }
    }
    let labels = match y {
        None => None,
        Some(bytes) => {
            check_records(bytes, y_path, 1, "STL-10 label")?;
            let n = x.len() / PIXELS;
            if bytes.len() != n {
                return Err(DataError::CountMismatch {
                    images: x_path.into(),
                    labels: y_path.into(),
                    n_images: n,
                    n_labels: bytes.len(),
                });
            }
            let labels = bytes.iter().enumerate().map(|(i, &b)| match b {
                1..=10 => Ok(i64::from(b) - 1),
                _ => Err(DataError::Format {
                    path: y_path.into(),
                    reason: format!("record {i} has label {b}, outside 1..=10"),
                }),
            });
            Some(labels.collect::<Result<Vec<_>>>()?)
        }
    };
    Ok(ImageArray::new(pixels, [3, SIDE, SIDE], labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dataset;
    use ssl_testutil::ScratchDir;

    /// An image whose stored byte at (channel c, column x, row y) is (c + 2x + 3y) mod 256,
    /// written column by column.
    fn stored_image() -> Vec<u8> {
        let mut v = Vec::with_capacity(PIXELS);
        for c in 0..3 {
            for x in 0..SIDE {
                for y in 0..SIDE {
                    v.push(((c + 2 * x + 3 * y) % 256) as u8);
                }
            }
        }
        v
    }

    #[test]
    fn images_come_out_row_major_and_labels_from_zero() {
        let dir = ScratchDir::new("stl10");
        std::fs::write(dir.join("train_X.bin"), [stored_image(), stored_image()].concat()).unwrap();
        std::fs::write(dir.join("train_y.bin"), [1u8, 10]).unwrap();
        let set = read_stl10(&dir, Stl10Split::Train).unwrap();
        assert_eq!((set.len(), set.image_shape()), (2, [3, 96, 96]));
        assert_eq!((set.label(0), set.label(1)), (Some(0), Some(9)));
        let mut out = vec![0u8; PIXELS];
        set.read_image(1, &mut out);
        // Row y = 1, column x = 2 of channel 2: (2 + 4 + 3) = 9, at 2 · 96² + 1 · 96 + 2.
        assert_eq!(out[2 * SIDE * SIDE + SIDE + 2], 9);
        // Row 0, column 5 of channel 0: 10.
        assert_eq!(out[5], 10);
        std::fs::write(dir.join("unlabeled_X.bin"), stored_image()).unwrap();
        let unlabeled = read_stl10(&dir, Stl10Split::Unlabeled).unwrap();
        assert_eq!((unlabeled.len(), unlabeled.label(0)), (1, None));
    }

    #[test]
    fn bad_files_are_errors_naming_them() {
        let dir = ScratchDir::new("stl10-bad");
        std::fs::write(dir.join("test_X.bin"), &stored_image()[..PIXELS - 5]).unwrap();
        let err = read_stl10(&dir, Stl10Split::Test).unwrap_err().to_string();
        assert!(err.contains("test_X.bin") && err.contains("27648-byte"), "{err}");
        std::fs::write(dir.join("test_X.bin"), stored_image()).unwrap();
        let err = read_stl10(&dir, Stl10Split::Test).unwrap_err().to_string();
        assert!(err.contains("test_y.bin"), "{err}");
        std::fs::write(dir.join("test_y.bin"), [1u8, 2]).unwrap();
        let err = read_stl10(&dir, Stl10Split::Test).unwrap_err().to_string();
        assert!(err.contains("1 images") && err.contains("2 labels"), "{err}");
        std::fs::write(dir.join("test_y.bin"), [0u8]).unwrap();
        let err = read_stl10(&dir, Stl10Split::Test).unwrap_err().to_string();
        assert!(err.contains("test_y.bin") && err.contains("label 0"), "{err}");
    }
}
