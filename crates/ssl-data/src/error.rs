//! The error type of ssl-data: every variant names the file it is about.

use std::path::PathBuf;

/// What can go wrong when reading a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened or read (or its gzip stream is corrupt).
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with an IDX magic number.
    #[error("{path}: not an IDX file: magic bytes {found:02x?}, expected [00, 00, type, ndims]")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes found.
        found: Vec<u8>,
    },
    /// An IDX element type other than unsigned bytes.
    #[error("{path}: IDX element type 0x{code:02x} is not supported (only 0x08, unsigned byte)")]
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The type code of the header.
        code: u8,
    },
    /// The file holds fewer (or more) bytes than its header announces.
    #[error("{path}: header announces {expected} bytes of data, file has {found}")]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Bytes the header's dimensions call for.
        expected: usize,
        /// Bytes actually present after the header.
        found: usize,
    },
    /// The array has the wrong number of dimensions for its role.
    #[error("{path}: expected a {expected}-D IDX array, found dimensions {dims:?}")]
    Rank {
        /// The file.
        path: PathBuf,
        /// The rank the caller needs.
        expected: usize,
        /// The dimensions found.
        dims: Vec<usize>,
    },
    /// Images and labels disagree on the number of samples.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Images in the image file.
        n_images: usize,
        /// Labels in the label file.
        n_labels: usize,
    },
    /// An image of an image folder that cannot be decoded (or a folder without images).
    #[error("{path}: {reason}")]
    Image {
        /// The file (or folder).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file whose length or contents do not fit its format (a truncated CIFAR or STL-10
    /// file, a label out of range).
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A loader setting is out of range.
    #[error("invalid loader config: {field} {reason}")]
    Loader {
        /// The field of `LoaderConfig`.
        field: &'static str,
        /// What it must satisfy.
        reason: &'static str,
    },
    /// An error raised by libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with [`DataError`] as the default error.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
