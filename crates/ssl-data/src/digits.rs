//! The UCI handwritten digits as scikit-learn ships them (`digits.csv.gz`): 1,797 images of
//! 8 × 8 pixels in 17 grey levels, 10 classes — a second real labelled image set for transfer.

use std::io::Read;
use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::{DataError, Result};

/// Side of a digit image, pixels.
pub const DIGIT_SIDE: usize = 8;
/// The largest grey level of the file (0 = background, 16 = full ink).
const LEVELS: u32 = 16;

/// The digits of `sklearn/datasets/data/digits.csv.gz` (Alpaydin & Kaynak 1998, "Optical
/// Recognition of Handwritten Digits", UCI; the test part of that set, as
/// `sklearn.datasets.load_digits` returns it).
///
/// Each line holds 64 pixel values in 0..=16 (row-major) and the class 0..=9. Pixels are
/// scaled to uint8 as `round(v · 255 / 16)`, so ink is bright on a dark ground, as in
/// Fashion-MNIST.
#[derive(Debug, Clone)]
pub struct Digits {
    pixels: Vec<u8>,
    labels: Vec<i64>,
    path: PathBuf,
}

impl Digits {
    /// Reads a `digits.csv.gz` (gzip) or `digits.csv` (plain) file.
    ///
    /// # Errors
    /// [`DataError::Io`] when the file cannot be read; [`DataError::Image`] naming the file and
    /// line when a line does not hold 65 integers in range.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |source| DataError::Io { path: path.clone(), source };
        let raw = std::fs::read(&path).map_err(io)?;
        let mut text = String::new();
        if raw.starts_with(&[0x1f, 0x8b]) {
            flate2::read::GzDecoder::new(raw.as_slice()).read_to_string(&mut text).map_err(io)?;
        } else {
            text = String::from_utf8(raw).map_err(|e| DataError::Image {
                path: path.clone(),
                reason: format!("not UTF-8 text: {e}"),
            })?;
        }
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let bad = |reason: String| DataError::Image {
                path: path.clone(),
                reason: format!("line {}: {reason}", i + 1),
            };
            let values: Vec<u32> = line
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .map(|f| f as u32)
                        .map_err(|e| bad(format!("{v:?}: {e}")))
                })
                .collect::<Result<_>>()?;
            let n = DIGIT_SIDE * DIGIT_SIDE;
            if values.len() != n + 1 {
                return Err(bad(format!(
                    "{} values, expected {} pixels and a class",
                    values.len(),
                    n
                )));
            }
            if let Some(v) = values[..n].iter().find(|&&v| v > LEVELS) {
                return Err(bad(format!("pixel value {v} above {LEVELS}")));
            }
            if values[n] > 9 {
                return Err(bad(format!("class {} is not a digit", values[n])));
            }
            pixels.extend(values[..n].iter().map(|&v| ((v * 255 + LEVELS / 2) / LEVELS) as u8));
            labels.push(i64::from(values[n]));
        }
        if labels.is_empty() {
            return Err(DataError::Image { path, reason: "no digits in the file".into() });
        }
        Ok(Self { pixels, labels, path })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the file held no image (never true for a value [`Digits::read`] returned).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The file the digits came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All images as uint8 `[N, 1, 8, 8]`.
    pub fn to_tensor(&self) -> Tensor {
        let s = DIGIT_SIDE as i64;
        Tensor::from_slice(&self.pixels).view([self.len() as i64, 1, s, s])
    }

    /// The classes as int64 `[N]`.
    pub fn labels_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssl_testutil::ScratchDir;

    /// `text` written to `digits.csv` (or gzipped to `digits.csv.gz`) in a scratch directory,
    /// then read.
    fn read(name: &str, text: &str, gzip: bool) -> Result<Digits> {
        let dir = ScratchDir::new(&format!("digits-{name}"));
        let path = dir.join(if gzip { "digits.csv.gz" } else { "digits.csv" });
        let bytes = if gzip {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(text.as_bytes()).unwrap();
            enc.finish().unwrap()
        } else {
            text.as_bytes().to_vec()
        };
        std::fs::write(&path, bytes).unwrap();
        Digits::read(path)
    }

    fn line(pixel: u32, class: u32) -> String {
        let mut v = vec![format!("{pixel}.0"); 64];
        v[0] = "0.0".into();
        v.push(format!("{class}.0"));
        v.join(",")
    }

    #[test]
    fn levels_scale_to_bytes_and_classes_are_kept() {
        let text = format!("{}\n{}\n", line(16, 3), line(8, 9));
        let d = read("ok", &text, true).unwrap();
        assert_eq!(d.len(), 2);
        let x = d.to_tensor();
        assert_eq!(x.size(), [2, 1, 8, 8]);
        // 16 → 255, 8 → round(127.5) = 128, 0 → 0.
        assert_eq!(x.int64_value(&[0, 0, 0, 1]), 255);
        assert_eq!(x.int64_value(&[1, 0, 7, 7]), 128);
        assert_eq!(x.int64_value(&[1, 0, 0, 0]), 0);
        assert_eq!(Vec::<i64>::try_from(d.labels_tensor()).unwrap(), [3, 9]);
        let plain = read("plain", &text, false).unwrap();
        assert!(plain.to_tensor().equal(&x));
    }

    #[test]
    fn a_bad_line_is_an_error_naming_the_file_and_line() {
        let text = format!("{}\n1.0,2.0\n", line(4, 1));
        let err = read("short", &text, false).unwrap_err().to_string();
        assert!(
            err.contains("digits.csv") && err.contains("line 2") && err.contains("2 values"),
            "{err}"
        );
        let err = read("level", &line(17, 1), false).unwrap_err().to_string();
        assert!(err.contains("pixel value 17"), "{err}");
        let err = read("class", &line(1, 12), false).unwrap_err().to_string();
        assert!(err.contains("class 12"), "{err}");
    }
}
