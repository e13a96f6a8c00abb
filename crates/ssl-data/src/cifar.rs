//! CIFAR-10 and CIFAR-100 in their binary release (`cifar-10-batches-bin`,
//! `cifar-100-binary`).

use std::path::{Path, PathBuf};

use crate::records::{check_records, checked_label, read_records};
use crate::{ImageArray, Result, Split};

/// Which CIFAR set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cifar {
    /// CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, records of one
    /// label byte (0–9) and 3,072 pixel bytes.
    Ten,
    /// CIFAR-100: `train.bin` and `test.bin`, records of a coarse (0–19) and a fine (0–99)
    /// label byte and 3,072 pixel bytes; the fine label is the one read.
    Hundred,
}

/// Pixel bytes of a CIFAR image: 1,024 red, then green, then blue, each 32 rows of 32.
const PIXELS: usize = 3 * 32 * 32;

impl Cifar {
    /// The number of classes of the labels read.
    pub fn classes(self) -> i64 {
        match self {
            Cifar::Ten => 10,
            Cifar::Hundred => 100,
        }
    }

    /// The files of `split` under `dir`.
    fn files(self, dir: &Path, split: Split) -> Vec<PathBuf> {
        let names: Vec<String> = match (self, split) {
            (Cifar::Ten, Split::Train) => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            (Cifar::Ten, Split::Test) => vec!["test_batch.bin".into()],
            (Cifar::Hundred, Split::Train) => vec!["train.bin".into()],
            (Cifar::Hundred, Split::Test) => vec!["test.bin".into()],
        };
        names.iter().map(|n| dir.join(n)).collect()
    }

    /// Label bytes before the pixels of each record.
    fn label_bytes(self) -> usize {
        match self {
            Cifar::Ten => 1,
            Cifar::Hundred => 2,
        }
    }

    /// Reads `split` from `dir`: 32 × 32 RGB images `[3, 32, 32]` and their labels.
    ///
    /// # Errors
    /// [`crate::DataError::Io`] naming a missing or unreadable file,
    /// [`crate::DataError::Format`] naming a file that is empty, truncated (not a whole number
    /// of records) or holds a label out of range.
    pub fn read(self, dir: impl AsRef<Path>, split: Split) -> Result<ImageArray> {
        let record = self.label_bytes() + PIXELS;
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for path in self.files(dir.as_ref(), split) {
            let bytes = read_records(&path, record, "CIFAR")?;
            self.parse_into(&bytes, &path, &mut pixels, &mut labels)?;
        }
        Ok(ImageArray::new(pixels, [3, 32, 32], Some(labels)))
    }

    /// The images and labels of one file's bytes (`path` names it in errors).
    ///
    /// # Errors
    /// [`crate::DataError::Format`] as [`Cifar::read`].
    pub fn parse(self, bytes: &[u8], path: &Path) -> Result<ImageArray> {
        check_records(bytes, path, self.label_bytes() + PIXELS, "CIFAR")?;
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        self.parse_into(bytes, path, &mut pixels, &mut labels)?;
        Ok(ImageArray::new(pixels, [3, 32, 32], Some(labels)))
    }

    /// Appends the records of `bytes` (a whole number of them) to `pixels` and `labels`.
    fn parse_into(
        self,
        bytes: &[u8],
        path: &Path,
        pixels: &mut Vec<u8>,
        labels: &mut Vec<i64>,
    ) -> Result<()> {
        let (skip, record) = (self.label_bytes(), self.label_bytes() + PIXELS);
        for (i, r) in bytes.chunks_exact(record).enumerate() {
            // The last label byte is CIFAR-10's label and CIFAR-100's fine label.
            labels.push(checked_label(path, i, i64::from(r[skip - 1]), self.classes())?);
            pixels.extend_from_slice(&r[skip..]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DataError, Dataset};
    use ssl_testutil::ScratchDir;

    /// A record: `labels`, then pixel k = (k + seed) mod 251.
    fn record(labels: &[u8], seed: usize) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend((0..PIXELS).map(|k| ((k + seed) % 251) as u8));
        r
    }

    #[test]
    fn cifar10_reads_five_training_batches_in_order_and_the_test_batch() {
        let dir = ScratchDir::new("cifar10");
        for b in 1..=5u8 {
            let bytes = [record(&[b], b as usize), record(&[9], 100 + b as usize)].concat();
            std::fs::write(dir.join(format!("data_batch_{b}.bin")), bytes).unwrap();
        }
        std::fs::write(dir.join("test_batch.bin"), record(&[3], 7)).unwrap();
        let train = Cifar::Ten.read(&dir, Split::Train).unwrap();
        assert_eq!((train.len(), train.image_shape()), (10, [3, 32, 32]));
        let labels: Vec<i64> = (0..10).map(|i| train.label(i).unwrap()).collect();
        assert_eq!(labels, [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
        // Image 2 is batch 2's first record: pixel 0 (red, row 0, column 0) = seed 2, the
        // first green pixel (1,024 + 2) mod 251 = 22, the last (3,071 + 2) mod 251 = 61.
        let mut out = vec![0u8; PIXELS];
        train.read_image(2, &mut out);
        assert_eq!((out[0], out[1024], out[PIXELS - 1]), (2, 22, 61));
        let test = Cifar::Ten.read(&dir, Split::Test).unwrap();
        assert_eq!((test.len(), test.label(0)), (1, Some(3)));
    }

    #[test]
    fn cifar100_reads_the_fine_label() {
        let dir = ScratchDir::new("cifar100");
        let bytes = [record(&[19, 99], 0), record(&[0, 42], 1)].concat();
        std::fs::write(dir.join("train.bin"), bytes).unwrap();
        let train = Cifar::Hundred.read(&dir, Split::Train).unwrap();
        assert_eq!((train.label(0), train.label(1)), (Some(99), Some(42)));
        let mut out = vec![0u8; PIXELS];
        train.read_image(1, &mut out);
        assert_eq!(out[0], 1);
    }

    #[test]
    fn truncated_empty_missing_and_mislabelled_files_are_errors_naming_them() {
        let dir = ScratchDir::new("cifar-bad");
        let full = record(&[1], 0);
        std::fs::write(dir.join("test_batch.bin"), &full[..full.len() - 1]).unwrap();
        let err = Cifar::Ten.read(&dir, Split::Test).unwrap_err();
        assert!(matches!(err, DataError::Format { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("test_batch.bin") && msg.contains("3073-byte"), "{msg}");
        std::fs::write(dir.join("test_batch.bin"), b"").unwrap();
        assert!(Cifar::Ten.read(&dir, Split::Test).is_err());
        let err = Cifar::Ten.read(&dir, Split::Train).unwrap_err().to_string();
        assert!(err.contains("data_batch_1.bin"), "{err}");
        std::fs::write(dir.join("test.bin"), record(&[0, 100], 0)).unwrap();
        let err = Cifar::Hundred.read(&dir, Split::Test).unwrap_err().to_string();
        assert!(err.contains("test.bin") && err.contains("label 100"), "{err}");
    }
}
