//! A folder of JPEG / PNG images of any size as a dataset of fixed-size views: decoded with
//! kornia-io and cropped and resized with kornia-imgproc on the loader's worker threads.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kornia_image::{Image, ImageSize};
use kornia_imgproc::interpolation::InterpolationMode;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::{DataError, Dataset, Result};

/// Settings of [`ImageFolder`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct ImageFolderConfig {
    /// Output `[height, width]` of every image.
    pub size: [usize; 2],
    /// Random resized crop (torchvision's box sampling, drawn per image and epoch) when true;
    /// the centre crop of the output's aspect ratio when false (evaluation).
    pub random_crop: bool,
    /// Range of the crop's area as a fraction of the image's.
    pub scale: [f64; 2],
    /// Range of the crop's aspect ratio w / h, sampled log-uniformly.
    pub ratio: [f64; 2],
    /// 3: RGB (a grayscale file's gray repeated); 1: grayscale, PIL's `convert("L")` luma
    /// (ITU-R 601: 0.299 R + 0.587 G + 0.114 B).
    pub channels: usize,
    /// What a file that does not decode does: stop with an error naming it, or be left out.
    pub on_corrupt: OnCorrupt,
}

/// What an image folder does with a file that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum OnCorrupt {
    /// An error naming the file: at [`ImageFolder::open`] for a header that does not decode,
    /// from the loader for a file that fails later (the default).
    #[default]
    Fail,
    /// Leave the file out and list it ([`Dataset::skipped`]): at `open` when its header does
    /// not decode (it is not counted), and at a read when its data does not (the next image
    /// that decodes is read in its place).
    Skip,
}

impl Default for ImageFolderConfig {
    /// torchvision's `RandomResizedCrop(224)` defaults.
    fn default() -> Self {
        Self {
            size: [224, 224],
            random_crop: true,
            scale: [0.08, 1.0],
            ratio: [0.75, 4.0 / 3.0],
            channels: 3,
            on_corrupt: OnCorrupt::Fail,
        }
    }
}

/// The images under a folder, as torchvision's `ImageFolder` reads them: with one sub-folder
/// per class (labels are the sorted class names' indices), or flat (unlabeled, the common case
/// of self-supervised pre-training). Files ending in `.jpg`, `.jpeg` or `.png` (any case).
///
/// [`ImageFolder::open`] lists the files and reads every header, so a file that is not a
/// decodable JPEG / PNG is an error naming it before training starts. Each read decodes the
/// file (kornia-io), takes a box (random per image and epoch, or the centre) and resizes it to
/// `size` with kornia-imgproc's antialiased bilinear resize, on the loader's worker thread.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    files: Vec<PathBuf>,
    labels: Option<Vec<i64>>,
    classes: Vec<String>,
    cfg: ImageFolderConfig,
    /// Files left out under [`OnCorrupt::Skip`].
    skipped: Arc<Mutex<BTreeSet<PathBuf>>>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

fn io_error(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io { path: path.to_path_buf(), source }
}

/// The sorted image files directly in `dir`.
fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        if path.is_file() && is_image(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Decodes the header of `path` (the first 256 KiB): its `(width, height)`.
fn header(path: &Path) -> Result<(usize, usize)> {
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    file.take(256 << 10).read_to_end(&mut bytes).map_err(|e| io_error(path, e))?;
    let png = bytes.starts_with(b"\x89PNG");
    let layout = if png {
        kornia_io::png::decode_image_png_layout(&bytes)
    } else {
        kornia_io::jpeg::decode_image_jpeg_layout(&bytes)
    };
    let layout = layout.map_err(|e| DataError::Image {
        path: path.to_path_buf(),
        reason: format!("not a decodable {} image: {e}", if png { "PNG" } else { "JPEG" }),
    })?;
    Ok((layout.image_size.width, layout.image_size.height))
}

impl ImageFolder {
    /// Lists and checks the images under `dir`.
    ///
    /// # Errors
    /// [`DataError::Io`] naming an unreadable folder or file, [`DataError::Image`] naming a
    /// file whose header does not decode, or the folder when it holds no image or `size` has
    /// a zero side.
    pub fn open(dir: impl AsRef<Path>, cfg: ImageFolderConfig) -> Result<Self> {
        let dir = dir.as_ref();
        let bad =
            |reason: &str| DataError::Image { path: dir.to_path_buf(), reason: reason.into() };
        if cfg.size.contains(&0) {
            return Err(bad("ImageFolderConfig.size must have two sides ≥ 1"));
        }
        if !matches!(cfg.channels, 1 | 3) {
            return Err(bad(&format!(
                "ImageFolderConfig.channels is {}, not 1 or 3",
                cfg.channels
            )));
        }
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io_error(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        let flat = images_in(dir)?;
        let (files, labels, classes) = if flat.is_empty() && !subdirs.is_empty() {
            let (mut files, mut labels, mut classes) = (Vec::new(), Vec::new(), Vec::new());
            for (k, sub) in subdirs.iter().enumerate() {
                let images = images_in(sub)?;
                if images.is_empty() {
                    return Err(DataError::Image {
                        path: sub.clone(),
                        reason: "is a class folder without a .jpg, .jpeg or .png image".into(),
                    });
                }
                labels.extend(std::iter::repeat_n(k as i64, images.len()));
                files.extend(images);
                classes.push(
                    sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                );
            }
            (files, Some(labels), classes)
        } else {
            (flat, None, Vec::new())
        };
        if files.is_empty() {
            return Err(bad("holds no .jpg, .jpeg or .png image"));
        }
        let mut skipped = BTreeSet::new();
        let (mut kept, mut kept_labels) = (Vec::new(), Vec::new());
        for (i, f) in files.into_iter().enumerate() {
            let checked = header(&f).and_then(|(w, h)| match w * h {
                0 => Err(DataError::Image {
                    path: f.clone(),
                    reason: format!("has size {w} × {h}"),
                }),
                _ => Ok(()),
            });
            match (checked, cfg.on_corrupt) {
                (Ok(()), _) => {
                    kept.push(f);
                    kept_labels.extend(labels.as_ref().map(|l| l[i]));
                }
                (Err(e), OnCorrupt::Fail) => return Err(e),
                (Err(_), OnCorrupt::Skip) => {
                    skipped.insert(f);
                }
            }
        }
        if kept.is_empty() {
            return Err(bad("holds no image that decodes"));
        }
        let labels = labels.map(|_| kept_labels);
        let skipped = Arc::new(Mutex::new(skipped));
        Ok(Self { files: kept, labels, classes, cfg, skipped })
    }

    /// The class names, in label order (empty for a flat folder).
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The file of image `index`.
    pub fn path(&self, index: usize) -> &Path {
        &self.files[index]
    }

    /// The box `[top, left, height, width]` of image `index` (`h` × `w` pixels) for `stream`.
    fn crop_box(&self, h: usize, w: usize, stream: u64) -> [usize; 4] {
        let [oh, ow] = self.cfg.size;
        if self.cfg.random_crop {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(stream);
            return random_box(h, w, self.cfg.scale, self.cfg.ratio, &mut rng);
        }
        // The largest centred box of the output's aspect ratio.
        let (bh, bw) =
            if w * oh >= h * ow { (h, (h * ow / oh).max(1)) } else { ((w * oh / ow).max(1), w) };
        [(h - bh) / 2, (w - bw) / 2, bh, bw]
    }
}

/// PIL's `convert("L")`: `(19595 R + 38470 G + 7471 B + 2¹⁵) >> 16`, ITU-R 601 luma in
/// 16-bit fixed point, rounded.
fn luma(px: &[u8]) -> u8 {
    let [r, g, b] = [px[0], px[1], px[2]].map(u32::from);
    ((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16) as u8
}

/// A uniform draw from `[lo, hi)`.
fn uniform(rng: &mut rand_chacha::ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
}

/// torchvision's `RandomResizedCrop.get_params` on an `h` × `w` image (ssl-aug's crop draws
/// its boxes the same way, on tensors).
fn random_box(
    h: usize,
    w: usize,
    scale: [f64; 2],
    ratio: [f64; 2],
    rng: &mut rand_chacha::ChaCha8Rng,
) -> [usize; 4] {
    let area = (h * w) as f64;
    for _ in 0..10 {
        let target = area * uniform(rng, scale[0], scale[1]);
        let aspect = uniform(rng, ratio[0].ln(), ratio[1].ln()).exp();
        let (cw, ch) =
            ((target * aspect).sqrt().round() as usize, (target / aspect).sqrt().round() as usize);
        if 0 < cw && cw <= w && 0 < ch && ch <= h {
            let top = ((uniform(rng, 0.0, 1.0) * (h - ch + 1) as f64) as usize).min(h - ch);
            let left = ((uniform(rng, 0.0, 1.0) * (w - cw + 1) as f64) as usize).min(w - cw);
            return [top, left, ch, cw];
        }
    }
    let in_ratio = w as f64 / h as f64;
    let (ch, cw) = if in_ratio < ratio[0] {
        (((w as f64 / ratio[0]).round() as usize).max(1), w)
    } else if in_ratio > ratio[1] {
        (h, ((h as f64 * ratio[1]).round() as usize).max(1))
    } else {
        (h, w)
    };
    [(h - ch) / 2, (w - cw) / 2, ch, cw]
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn image_shape(&self) -> [usize; 3] {
        [self.cfg.channels, self.cfg.size[0], self.cfg.size[1]]
    }

    fn read_image(&self, index: usize, out: &mut [u8]) {
        self.read_image_at(index, 0, out);
    }

    /// # Panics
    /// When the file no longer decodes under [`OnCorrupt::Fail`] (its header did at
    /// [`ImageFolder::open`]); the message names the file.
    fn read_image_at(&self, index: usize, stream: u64, out: &mut [u8]) {
        if let Err(e) = self.try_read_image_at(index, stream, out) {
            panic!("ImageFolder: {e}");
        }
    }

    fn try_read_image_at(&self, index: usize, stream: u64, out: &mut [u8]) -> Result<()> {
        let n = self.files.len();
        for k in 0..n {
            let i = (index + k) % n;
            match self.decode(i, stream, out) {
                Ok(()) => return Ok(()),
                Err(e) if self.cfg.on_corrupt == OnCorrupt::Fail => return Err(e),
                Err(_) => {
                    self.skipped.lock().expect("skip list").insert(self.files[i].clone());
                }
            }
        }
        Err(DataError::Image {
            path: self.files[index].parent().unwrap_or(Path::new(".")).into(),
            reason: "no image of the folder decodes any more".into(),
        })
    }

    fn skipped(&self) -> Vec<PathBuf> {
        self.skipped.lock().expect("skip list").iter().cloned().collect()
    }

    fn label(&self, index: usize) -> Option<i64> {
        self.labels.as_ref().map(|l| l[index])
    }
}

impl ImageFolder {
    /// Decodes image `index`, crops its box for `stream` and resizes it into `out`.
    fn decode(&self, index: usize, stream: u64, out: &mut [u8]) -> Result<()> {
        let path = &self.files[index];
        let fail = |what: &str, e: &dyn std::fmt::Display| DataError::Image {
            path: path.clone(),
            reason: format!("{what}: {e}"),
        };
        let image = crate::decode::read_rgb8(path)?;
        let (h, w) = (image.height(), image.width());
        let [top, left, bh, bw] = self.crop_box(h, w, stream);
        let mut boxed = Image::<u8, 3>::from_size_val(ImageSize { width: bw, height: bh }, 0)
            .map_err(|e| fail("allocating a crop", &e))?;
        kornia_imgproc::crop::crop_image(&image, &mut boxed, left, top)
            .map_err(|e| fail("cropping", &e))?;
        let [oh, ow] = self.cfg.size;
        let mut resized = Image::<u8, 3>::from_size_val(ImageSize { width: ow, height: oh }, 0)
            .map_err(|e| fail("allocating the resized image", &e))?;
        kornia_imgproc::resize::resize_fast_rgb(&boxed, &mut resized, InterpolationMode::Bilinear)
            .map_err(|e| fail("resizing", &e))?;
        // HWC interleaved → CHW planes (or one luma plane).
        let plane = oh * ow;
        for (p, px) in resized.as_slice().chunks_exact(3).enumerate() {
            if self.cfg.channels == 1 {
                out[p] = luma(px);
            } else {
                for c in 0..3 {
                    out[c * plane + p] = px[c];
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssl_testutil::ScratchDir;

    /// A `w` × `h` RGB image whose pixel (x, y) is (x, y, 7) · 10.
    fn write_png(path: &Path, w: usize, h: usize) {
        let data: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 10) as u8, (y * 10) as u8, 70]))
            .collect();
        let image = Image::<u8, 3>::new(ImageSize { width: w, height: h }, data).unwrap();
        kornia_io::png::write_image_png_rgb8(path, &image).unwrap();
    }

    fn temp_dir(name: &str) -> ScratchDir {
        ScratchDir::new(&format!("image-folder-{name}"))
    }

    #[test]
    fn class_folders_give_sorted_labels_and_a_flat_folder_none() {
        let dir = temp_dir("classes");
        for (class, n) in [("dog", 2), ("cat", 1)] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            for i in 0..n {
                write_png(&dir.join(class).join(format!("{i}.png")), 8, 6);
            }
        }
        let cfg = ImageFolderConfig { size: [4, 4], ..Default::default() };
        let set = ImageFolder::open(&dir, cfg).unwrap();
        assert_eq!(set.classes(), ["cat", "dog"]);
        assert_eq!((0..3).map(|i| set.label(i).unwrap()).collect::<Vec<_>>(), [0, 1, 1]);
        let flat = ImageFolder::open(dir.join("dog"), cfg).unwrap();
        assert_eq!((flat.len(), flat.label(0)), (2, None));
    }

    #[test]
    fn the_centre_box_at_the_image_size_is_the_image_itself() {
        let dir = temp_dir("identity");
        write_png(&dir.join("a.png"), 5, 4);
        let set = ImageFolder::open(
            &dir,
            ImageFolderConfig { size: [4, 5], random_crop: false, ..Default::default() },
        )
        .unwrap();
        let mut out = vec![0u8; 3 * 4 * 5];
        set.read_image(0, &mut out);
        let red: Vec<u8> = (0..4).flat_map(|_| (0..5).map(|x| (x * 10) as u8)).collect();
        let green: Vec<u8> = (0..4).flat_map(|y| std::iter::repeat_n((y * 10) as u8, 5)).collect();
        assert_eq!(&out[..20], &red[..]);
        assert_eq!(&out[20..40], &green[..]);
        assert!(out[40..].iter().all(|&b| b == 70));
    }

    #[test]
    fn one_channel_is_pils_luma() {
        let dir = temp_dir("gray");
        write_png(&dir.join("a.png"), 3, 3);
        let cfg = ImageFolderConfig {
            size: [3, 3],
            random_crop: false,
            channels: 1,
            ..Default::default()
        };
        let set = ImageFolder::open(&dir, cfg).unwrap();
        assert_eq!(set.image_shape(), [1, 3, 3]);
        let mut out = vec![0u8; 9];
        set.read_image(0, &mut out);
        // Pixel (x 1, y 2) = (10, 20, 70): 0.299·10 + 0.587·20 + 0.114·70 = 22.71 → 23.
        assert_eq!(out[2 * 3 + 1], 23);
        // (0, 0, 70): 7.98 → 8; (20, 20, 70): 25.7 → 26.
        assert_eq!((out[0], out[2 * 3 + 2]), (8, 26));
        assert_eq!(luma(&[200, 200, 200]), 200, "a gray pixel keeps its value");
        let err = ImageFolder::open(&dir, ImageFolderConfig { channels: 2, ..cfg }).unwrap_err();
        assert!(err.to_string().contains("channels is 2"), "{err}");
    }

    #[test]
    fn random_boxes_are_reproducible_per_stream_and_follow_the_scale() {
        let set = ImageFolder {
            files: vec![],
            labels: None,
            classes: vec![],
            cfg: ImageFolderConfig { scale: [0.25, 0.5], ..Default::default() },
            skipped: Arc::default(),
        };
        assert_eq!(set.crop_box(100, 120, 7), set.crop_box(100, 120, 7));
        let areas: Vec<f64> = (0..2000u64)
            .map(|s| {
                let [_, _, h, w] = set.crop_box(100, 120, s);
                (h * w) as f64 / 12_000.0
            })
            .collect();
        assert!(
            areas.iter().all(|&a| (0.24..0.51).contains(&a)),
            "areas in the scale range (rounding aside)"
        );
        let mean = areas.iter().sum::<f64>() / areas.len() as f64;
        assert!((mean - 0.375).abs() < 0.01, "{mean}"); // U(0.25, 0.5), standard error 0.0016
    }

    /// A folder with `good.png` (3 × 2) and `late.png`, whose header decodes but whose data
    /// is cut off.
    fn folder_with_a_truncated_png(name: &str) -> ScratchDir {
        let dir = temp_dir(name);
        write_png(&dir.join("good.png"), 3, 2);
        write_png(&dir.join("late.png"), 40, 40);
        let bytes = std::fs::read(dir.join("late.png")).unwrap();
        std::fs::write(dir.join("late.png"), &bytes[..bytes.len() / 2]).unwrap();
        dir
    }

    #[test]
    fn a_file_that_fails_after_its_header_stops_the_loader_naming_it_or_is_skipped() {
        let cfg = ImageFolderConfig { size: [2, 3], random_crop: false, ..Default::default() };
        let dir = folder_with_a_truncated_png("late-fail");
        let set = Arc::new(ImageFolder::open(&dir, cfg).unwrap());
        assert_eq!(set.len(), 2, "its header decodes");
        let mut out = vec![0u8; 18];
        let err = set.try_read_image_at(1, 0, &mut out).unwrap_err().to_string();
        assert!(err.contains("late.png") && err.contains("does not decode"), "{err}");
        let loader_cfg = crate::LoaderConfig {
            batch_size: 2,
            workers: 1,
            prefetch: 1,
            shuffle: false,
            drop_last: false,
            seed: 0,
        };
        let err = crate::Loader::new(set, loader_cfg).unwrap().read_all().unwrap_err();
        assert!(err.to_string().contains("late.png"), "{err}");

        let dir = folder_with_a_truncated_png("late-skip");
        let skip = ImageFolderConfig { on_corrupt: OnCorrupt::Skip, ..cfg };
        let set = ImageFolder::open(&dir, skip).unwrap();
        let (mut good, mut instead) = (vec![0u8; 18], vec![0u8; 18]);
        set.read_image(0, &mut good);
        set.read_image(1, &mut instead); // wraps around to good.png
        assert_eq!(good, instead);
        assert_eq!(set.skipped(), [dir.join("late.png")]);
    }

    #[test]
    fn a_header_that_does_not_decode_is_skipped_at_open_and_an_empty_class_is_an_error() {
        let dir = temp_dir("bad-header-skip");
        write_png(&dir.join("a.png"), 4, 4);
        std::fs::write(dir.join("b.jpg"), b"not a jpeg").unwrap();
        let skip = ImageFolderConfig { on_corrupt: OnCorrupt::Skip, ..Default::default() };
        let set = ImageFolder::open(&dir, skip).unwrap();
        assert_eq!((set.len(), set.skipped()), (1, vec![dir.join("b.jpg")]));
        let dir = temp_dir("empty-class");
        std::fs::create_dir_all(dir.join("cat")).unwrap();
        std::fs::create_dir_all(dir.join("dog")).unwrap();
        write_png(&dir.join("cat/0.png"), 4, 4);
        let err = ImageFolder::open(&dir, ImageFolderConfig::default()).unwrap_err().to_string();
        assert!(err.contains("dog") && err.contains("class folder without"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_an_image_is_an_error_naming_it() {
        let dir = temp_dir("corrupt");
        std::fs::write(dir.join("broken.jpg"), b"not a jpeg at all").unwrap();
        let err = ImageFolder::open(&dir, ImageFolderConfig::default()).unwrap_err().to_string();
        assert!(err.contains("broken.jpg") && err.contains("JPEG"), "{err}");
        let err = ImageFolder::open(temp_dir("empty"), ImageFolderConfig::default()).unwrap_err();
        assert!(err.to_string().contains("no .jpg"), "{err}");
    }
}
