//! Files of fixed-size records (CIFAR's label-and-image records, STL-10's images and labels):
//! read whole, their length checked against the record size.

use std::path::Path;

use crate::{DataError, Result};

/// The bytes of `path`, a non-empty whole number of `record`-byte records.
///
/// # Errors
/// [`DataError::Io`] naming an unreadable file, [`DataError::Format`] naming an empty file or
/// one whose length is not a multiple of `record` (truncated or of another format).
pub(crate) fn read_records(path: &Path, record: usize, what: &str) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).map_err(|source| DataError::Io { path: path.into(), source })?;
    check_records(&bytes, path, record, what)?;
    Ok(bytes)
}

/// [`read_records`]' check of bytes already read from `path`.
///
/// # Errors
/// [`DataError::Format`] naming `path`, as [`read_records`].
pub(crate) fn check_records(bytes: &[u8], path: &Path, record: usize, what: &str) -> Result<()> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::Format {
            path: path.into(),
            reason: format!(
                "{} bytes is not a whole, non-zero number of {record}-byte {what} records \
                 (truncated, or not this format)",
                bytes.len()
            ),
        });
    }
    Ok(())
}

/// `label` as an int64 in `0..classes`, or an error naming the file and the record.
pub(crate) fn checked_label(path: &Path, index: usize, label: i64, classes: i64) -> Result<i64> {
    if (0..classes).contains(&label) {
        Ok(label)
    } else {
        Err(DataError::Format {
            path: path.into(),
            reason: format!("record {index} has label {label}, outside 0..{classes}"),
        })
    }
}
