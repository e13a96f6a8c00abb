//! Datasets for self-supervised training: file formats and the prefetching loader.
//!
//! - [`read_idx`] / [`parse_idx`] / [`encode_idx`]: the IDX format of MNIST and Fashion-MNIST,
//!   gzip or raw.
//! - [`IdxImages`]: an image file plus its optional label file, checked against each other.
//! - [`Dataset`]: random access to images (labels optional); [`Loader`]: seeded epoch orders,
//!   batches assembled on worker threads and handed over through bounded crossbeam channels.
//! - [`Cifar`]: CIFAR-10 / CIFAR-100 binary files; [`read_stl10`]: STL-10's binary files;
//!   both give an [`ImageArray`] (fixed-size images in memory, labels optional).
//! - [`ImageFolder`]: JPEG / PNG files of any size, labelled by sub-folder or flat.
//! - [`Subset`]: a contiguous range of another dataset (pre-training without a held-out tail).
//! - [`Digits`]: scikit-learn's 8 × 8 handwritten digits (`digits.csv.gz`), for transfer.
//!
//! Together with ssl-train this is the only crate that does I/O. See ARCHITECTURE.md.
//!
//! ```no_run
//! use ssl_data::{IdxImages, Split};
//! let train = IdxImages::fashion_mnist("/usr/share/datasets/fashion-mnist", Split::Train)?;
//! assert_eq!((train.len(), train.height(), train.width()), (60_000, 28, 28));
//! # Ok::<(), ssl_data::DataError>(())
//! ```

mod cifar;
mod dataset;
mod decode;
mod digits;
mod error;
mod idx;
mod idx_images;
mod image_array;
mod image_folder;
mod loader;
mod records;
mod stl10;
mod subset;

pub use cifar::Cifar;
pub use dataset::Dataset;
pub use decode::{decode_image_rgb8, MAX_IMAGE_PIXELS};
pub use digits::{Digits, DIGIT_SIDE};
pub use error::{DataError, Result};
pub use idx::{encode_idx, parse_idx, read_idx, IdxArray};
pub use idx_images::{IdxImages, Split};
pub use image_array::ImageArray;
pub use image_folder::{ImageFolder, ImageFolderConfig, OnCorrupt};
pub use loader::{Batch, EpochBatches, Loader, LoaderConfig};
pub use stl10::{parse_stl10, read_stl10, Stl10Split};
pub use subset::Subset;
