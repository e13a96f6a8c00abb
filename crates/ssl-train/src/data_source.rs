//! Where a run's images come from: the `data` section's source keys (and `eval.data`, a
//! labelled set for evaluation), opened as [`Dataset`]s of one image size.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ssl_data::{
    read_stl10, Cifar, Dataset, IdxImages, ImageFolder, ImageFolderConfig, Loader, LoaderConfig,
    OnCorrupt, Split, Stl10Split,
};
use tch::Tensor;

use crate::error::invalid;
use crate::{Result, TrainError};

/// The file format of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// MNIST-style IDX files (`{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`):
    /// Fashion-MNIST, MNIST, KMNIST; grayscale.
    #[default]
    Idx,
    /// CIFAR-10's binary files (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`).
    Cifar10,
    /// CIFAR-100's binary files (`train.bin`, `test.bin`), fine labels.
    Cifar100,
    /// STL-10's binary files: pre-training on `unlabeled_X.bin`, evaluation on `train_*` and
    /// `test_*`.
    Stl10,
    /// JPEG / PNG files of any size under `dir`, one sub-folder per class (labelled) or flat
    /// (unlabelled: pre-training only); centre-cropped and resized to `image_size` on the
    /// loader's threads.
    ImageFolder,
}

/// One source of images: the keys `data` and `eval.data` share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `idx` (the default), `cifar10`, `cifar100`, `stl10` or `image_folder`.
    #[serde(default)]
    pub format: DataFormat,
    /// The directory holding the files (an image folder: the training images).
    pub dir: PathBuf,
    /// `image_folder` only: the labelled test images (class sub-folders); the other formats
    /// find their test files in `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_dir: Option<PathBuf>,
    /// The side of the (square) images the loader hands out: required for `image_folder`
    /// (the size it decodes to); IDX files hold it themselves (28 when null, checked against
    /// the files); CIFAR's is 32 and STL-10's 96 (when given, it must be those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<i64>,
    /// `image_folder` only: 3 (RGB, the default) or 1 (grayscale, PIL's luma).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<i64>,
    /// `image_folder` only: a file that does not decode stops the run naming it (`fail`, the
    /// default) or is left out and listed in the summary (`skip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_corrupt: Option<OnCorrupt>,
}

/// Which images of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The images pre-training reads (STL-10: the unlabelled ones; the others: the training
    /// split).
    Pretrain,
    /// The labelled training images evaluation fits on.
    Train,
    /// The labelled test images.
    Test,
}

impl SourceConfig {
    /// The side of the format's images: IDX 28 unless `image_size` says otherwise (checked
    /// against the files when opened), CIFAR 32, STL-10 96; an image folder has none.
    fn native_side(&self) -> Option<i64> {
        match self.format {
            DataFormat::Idx => Some(self.image_size.unwrap_or(28)),
            DataFormat::Cifar10 | DataFormat::Cifar100 => Some(32),
            DataFormat::Stl10 => Some(96),
            DataFormat::ImageFolder => None,
        }
    }

    /// `[height, width]` of the images this source gives.
    ///
    /// # Panics
    /// When an image folder has no `image_size`, which [`SourceConfig::validate`] rules out.
    pub fn image_size(&self) -> [i64; 2] {
        let side = self.image_size.or(self.native_side());
        let side = side.expect("image_folder's image_size is checked by validate");
        [side, side]
    }

    /// Channels of the images: 1 for IDX, 3 for CIFAR and STL-10, `channels` (default 3) for
    /// an image folder.
    pub fn channels(&self) -> i64 {
        match self.format {
            DataFormat::Idx => 1,
            DataFormat::ImageFolder => self.channels.unwrap_or(3),
            _ => 3,
        }
    }

    /// Whether pre-training reads the training split evaluation fits on (every format but
    /// STL-10, whose pre-training images are its unlabelled ones).
    pub fn pretrains_on_train(&self) -> bool {
        self.format != DataFormat::Stl10
    }

    /// Checks the keys against the format; errors name `key.field` (`key` is `data` or
    /// `eval.data`).
    ///
    /// # Errors
    /// [`TrainError::Invalid`] for a missing or wrong `image_size`, a `channels` other than 1
    /// or 3, or an image folder's key given to another format.
    pub fn validate(&self, key: &str) -> Result<()> {
        let folder = self.format == DataFormat::ImageFolder;
        match (self.image_size, self.native_side()) {
            (None, None) => {
                return invalid(&format!("{key}.image_size"), "null", "image_folder needs a size")
            }
            (Some(s), _) if s < 1 => {
                return invalid(&format!("{key}.image_size"), s, "must be ≥ 1");
            }
            (Some(s), Some(native)) if s != native => {
                let reason = format!("must be {native}, the {:?} format's size", self.format);
                return invalid(&format!("{key}.image_size"), s, &reason);
            }
            _ => {}
        }
        if let Some(c) = self.channels {
            if !folder {
                return invalid(&format!("{key}.channels"), c, "only image_folder has channels");
            }
            if !matches!(c, 1 | 3) {
                return invalid(&format!("{key}.channels"), c, "must be 1 or 3");
            }
        }
        if self.on_corrupt.is_some() && !folder {
            return invalid(&format!("{key}.on_corrupt"), "set", "only image_folder decodes files");
        }
        if self.test_dir.is_some() && !folder {
            return invalid(
                &format!("{key}.test_dir"),
                "set",
                "only image_folder has a test_dir (the others keep their test files in dir)",
            );
        }
        Ok(())
    }

    /// Opens `part`; `key` (`data` or `eval.data`) names the source in errors.
    ///
    /// # Errors
    /// [`ssl_data::DataError`] naming the file or folder; [`TrainError::Invalid`] naming
    /// `key.test_dir` when an image folder's test images are asked for and not configured.
    pub fn open(&self, part: Part, key: &str) -> Result<Arc<dyn Dataset>> {
        let split = if part == Part::Test { Split::Test } else { Split::Train };
        let set: Arc<dyn Dataset> = match self.format {
            DataFormat::Idx => Arc::new(IdxImages::fashion_mnist(&self.dir, split)?),
            DataFormat::Cifar10 => Arc::new(Cifar::Ten.read(&self.dir, split)?),
            DataFormat::Cifar100 => Arc::new(Cifar::Hundred.read(&self.dir, split)?),
            DataFormat::Stl10 => {
                let split = match part {
                    Part::Pretrain => Stl10Split::Unlabeled,
                    Part::Train => Stl10Split::Train,
                    Part::Test => Stl10Split::Test,
                };
                Arc::new(read_stl10(&self.dir, split)?)
            }
            DataFormat::ImageFolder => {
                let dir = match part {
                    Part::Test => self.test_dir.as_ref().ok_or_else(|| TrainError::Invalid {
                        field: format!("{key}.test_dir"),
                        value: "null".into(),
                        reason: "evaluation on the test set needs the labelled test images".into(),
                    })?,
                    _ => &self.dir,
                };
                let [h, w] = self.image_size().map(|s| s as usize);
                let cfg = ImageFolderConfig {
                    size: [h, w],
                    random_crop: false,
                    channels: self.channels() as usize,
                    on_corrupt: self.on_corrupt.unwrap_or_default(),
                    ..Default::default()
                };
                Arc::new(ImageFolder::open(dir, cfg)?)
            }
        };
        let [_, h, w] = set.image_shape();
        if [h as i64, w as i64] != self.image_size() {
            let reason = format!("the files in {} hold {h} × {w} images", self.dir.display());
            return invalid(
                &format!("{key}.image_size"),
                format!("{:?}", self.image_size),
                &reason,
            );
        }
        Ok(set)
    }

    /// Every image of `part` as uint8 `[N, C, H, W]`, with its labels `[N]` when it has
    /// them, read (an image folder: decoded) by `workers` threads.
    ///
    /// # Errors
    /// As [`SourceConfig::open`].
    pub fn load(&self, part: Part, key: &str, workers: usize) -> Result<(Tensor, Option<Tensor>)> {
        let set = self.open(part, key)?;
        let cfg = LoaderConfig {
            batch_size: 256,
            workers: workers.max(1),
            prefetch: 2,
            shuffle: false,
            drop_last: false,
            seed: 0,
        };
        let read = Loader::new(Arc::clone(&set), cfg)?.read_all()?;
        let skipped = set.skipped();
        if !skipped.is_empty() {
            eprintln!(
                "warning: {key}: {} files skipped (on_corrupt: skip): {skipped:?}",
                skipped.len()
            );
        }
        Ok(read)
    }

    /// [`SourceConfig::load`] of images that must have labels.
    ///
    /// # Errors
    /// As [`SourceConfig::open`], and [`TrainError::Invalid`] naming `key.dir` when the images
    /// have no labels (an unlabelled image folder).
    pub fn load_labelled(&self, part: Part, key: &str, workers: usize) -> Result<(Tensor, Tensor)> {
        let (images, labels) = self.load(part, key, workers)?;
        let labels = labels.ok_or_else(|| TrainError::Invalid {
            field: format!("{key}.dir"),
            value: self.dir.display().to_string(),
            reason: "evaluation needs labelled images (class sub-folders); name a labelled set \
                     in eval.data"
                .into(),
        })?;
        Ok((images, labels))
    }
}
