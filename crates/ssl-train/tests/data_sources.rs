//! Pre-training and evaluation from every `data.format` on small files the tests write: CIFAR-10
//! and CIFAR-100 binary files, STL-10's, and image folders of PNGs (RGB and grayscale). The
//! classes are told apart by colour, so the raw-pixel probe scores 100 % exactly when every
//! image was read with its own label — a misread image or a shifted label shows up there.

mod common;

use std::path::Path;

use kornia_image::{Image, ImageSize};
use ssl_testutil::ScratchDir;
use ssl_train::evaluate::EvalData;
use ssl_train::{config, Config, Scores};

/// Pixel (c, y, x) of image `i` of class `k` (0–5): classes 0–2 are 190 in channel k and 40
/// in the others, classes 3–5 the reverse; ± 20 of noise that varies with the image and the
/// pixel.
fn pixel(k: usize, i: usize, c: usize, y: usize, x: usize) -> u8 {
    let base = if (c == k % 3) == (k < 3) { 190 } else { 40 };
    let noise = (i * 7 + c * 13 + y * 5 + x * 3) % 41;
    (base + noise - 20) as u8
}

/// Image `i` of class `k` as `[3, h, w]` channel-major bytes.
fn image(k: usize, i: usize, h: usize, w: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(3 * h * w);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                v.push(pixel(k, i, c, y, x));
            }
        }
    }
    v
}

/// SimCLR's shipped config, tiny, on `data` keys `extra`: 3-channel width-4 ResNet, batch 8,
/// two steps, kNN with k = 5, a short probe, the images' own size in evaluation.
fn cfg(extra: &[&str]) -> Config {
    let mut o = vec![
        "model.backbone.in_channels=3",
        "data.batch_size=8",
        "method.projection.hidden_dim=8",
        "method.projection.output_dim=8",
        "train.steps=2",
        "eval.knn.k=5",
        "eval.linear.epochs=60",
        "eval.linear.lrs=[0.1]",
        "eval.linear.weight_decays=[0.0]",
        "eval.resize=null",
    ];
    o.extend(extra);
    common::tiny("simclr-fmnist.yaml", &o)
}

/// Trains `cfg`, evaluates the trained network (scores are probabilities) and checks that raw
/// pixels separate the colour classes perfectly; returns the evaluation's (train, test) sizes.
fn train_and_evaluate(cfg: &Config) -> (i64, i64) {
    let (sizes, pixels) = train_and_score_pixels(cfg);
    assert_eq!((pixels.knn_top1, pixels.linear_top1), (1.0, 1.0), "raw pixels: {pixels:?}");
    sizes
}

/// Trains `cfg` and evaluates the trained network (scores are probabilities); the
/// evaluation's (train, test) sizes and the raw pixels' scores.
fn train_and_score_pixels(cfg: &Config) -> ((i64, i64), Scores) {
    let trained = ssl_train::train(cfg, None).unwrap();
    assert!(trained.losses.iter().all(|l| l.is_finite()), "{:?}", trained.losses);
    let data = EvalData::load(cfg).unwrap();
    let scores = data.score_network(trained.model.backbone(), cfg, tch::Device::Cpu);
    for s in [scores.knn_top1, scores.linear_top1] {
        assert!((0.0..=1.0).contains(&s), "{s}");
    }
    (data.sizes(), data.score_pixels(cfg))
}

/// CIFAR records of images `first..first + n`, image i of class i mod `classes`; CIFAR-100's
/// records lead with a coarse label unrelated to the colour ((i / 6) mod 2).
fn cifar_file(path: &Path, classes: usize, n: usize, first: usize, hundred: bool) {
    let mut bytes = Vec::new();
    for i in first..first + n {
        let k = i % classes;
        if hundred {
            bytes.push(((i / 6) % 2) as u8);
        }
        bytes.push(k as u8);
        bytes.extend(image(k, i, 32, 32));
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn cifar10_binary_files_pretrain_and_evaluate() {
    let dir = ScratchDir::new("cifar10-run");
    for b in 0..5 {
        cifar_file(&dir.join(format!("data_batch_{}.bin", b + 1)), 3, 12, 12 * b, false);
    }
    cifar_file(&dir.join("test_batch.bin"), 3, 9, 1000, false);
    let d = dir.display();
    let c = cfg(&["data.format=cifar10", &format!("data.dir={d}")]);
    assert_eq!(train_and_evaluate(&c), (60, 9));
}

#[test]
fn cifar100_pretrains_and_evaluates_on_the_fine_labels() {
    let dir = ScratchDir::new("cifar100-run");
    cifar_file(&dir.join("train.bin"), 6, 48, 0, true);
    cifar_file(&dir.join("test.bin"), 6, 12, 600, true);
    let d = dir.display();
    let c = cfg(&["data.format=cifar100", &format!("data.dir={d}")]);
    // The coarse labels do not follow the colours: pixels score 100 % only on the fine ones.
    assert_eq!(train_and_evaluate(&c), (48, 12));
    let data = EvalData::load(&c).unwrap();
    let want: Vec<i64> = (0..48).map(|i| i % 6).collect();
    assert_eq!(Vec::<i64>::try_from(data.train_split().1).unwrap(), want);
}

/// STL-10's files store each channel column by column.
fn stl_images(n: usize, first: usize, classes: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in first..first + n {
        for c in 0..3 {
            for x in 0..96 {
                for y in 0..96 {
                    v.push(pixel(i % classes, i, c, y, x));
                }
            }
        }
    }
    v
}

#[test]
fn stl10_pretrains_on_the_unlabelled_images_and_evaluates_on_train_and_test() {
    let dir = ScratchDir::new("stl10-run");
    std::fs::write(dir.join("unlabeled_X.bin"), stl_images(16, 100, 3)).unwrap();
    std::fs::write(dir.join("train_X.bin"), stl_images(12, 0, 3)).unwrap();
    std::fs::write(dir.join("train_y.bin"), (0..12).map(|i| (i % 3 + 1) as u8).collect::<Vec<_>>())
        .unwrap();
    std::fs::write(dir.join("test_X.bin"), stl_images(6, 50, 3)).unwrap();
    std::fs::write(dir.join("test_y.bin"), (50..56).map(|i| (i % 3 + 1) as u8).collect::<Vec<_>>())
        .unwrap();
    let d = dir.display();
    let c = cfg(&["data.format=stl10", &format!("data.dir={d}")]);
    assert!(!c.pretrains_on_eval_train(), "the unlabelled images are another set");
    assert_eq!(train_and_evaluate(&c), (12, 6));
    // Row-major after the reader's transpose: image 0 is `image(0, 0, 96, 96)`.
    let data = EvalData::load(&c).unwrap();
    let first = Vec::<u8>::try_from(data.train_split().0.get(0).flatten(0, -1)).unwrap();
    assert_eq!(first, image(0, 0, 96, 96));
}

/// Writes `[3, h, w]` channel-major bytes as an RGB PNG.
fn write_png(path: &Path, chw: &[u8], h: usize, w: usize) {
    let hwc: Vec<u8> = (0..h * w).flat_map(|p| (0..3).map(move |c| chw[c * h * w + p])).collect();
    let img = Image::<u8, 3>::new(ImageSize { width: w, height: h }, hwc).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    kornia_io::png::write_image_png_rgb8(path, &img).unwrap();
}

/// A labelled folder `root/class{k}/{i}.png`, images `first..first + n` of 3 classes, in
/// three shapes (landscape, portrait, square) that the loader crops and resizes.
fn labelled_folder(root: &Path, n: usize, first: usize) {
    for i in first..first + n {
        let (h, w) = [(30, 40), (40, 30), (36, 36)][i % 3];
        let k = (i / 3) % 3;
        write_png(&root.join(format!("class{k}/{i:03}.png")), &image(k, i, h, w), h, w);
    }
}

#[test]
fn a_labelled_png_folder_pretrains_and_evaluates() {
    let dir = ScratchDir::new("folder-run");
    labelled_folder(&dir.join("train"), 36, 0);
    labelled_folder(&dir.join("test"), 9, 100);
    let d = dir.display();
    let c = cfg(&[
        "data.format=image_folder",
        &format!("data.dir={d}/train"),
        &format!("data.test_dir={d}/test"),
        "data.image_size=24",
    ]);
    assert_eq!(train_and_evaluate(&c), (36, 9));
}

#[test]
fn an_unlabelled_folder_pretrains_and_evaluates_on_the_labelled_set_named_in_eval_data() {
    let dir = ScratchDir::new("folder-flat");
    for i in 0..16 {
        write_png(&dir.join(format!("flat/{i}.png")), &image(i % 3, i, 28, 34), 28, 34);
    }
    for b in 0..5 {
        cifar_file(&dir.join(format!("cifar/data_batch_{}.bin", b + 1)), 3, 6, 6 * b, false);
    }
    cifar_file(&dir.join("cifar/test_batch.bin"), 3, 6, 90, false);
    let d = dir.display();
    let flat = [
        "data.format=image_folder".to_string(),
        format!("data.dir={d}/flat"),
        "data.image_size=32".into(),
    ];
    let mut keys: Vec<&str> = flat.iter().map(String::as_str).collect();
    let unlabelled = cfg(&keys);
    let err = EvalData::load(&unlabelled).unwrap_err().to_string();
    assert!(err.contains("data.dir") && err.contains("eval.data"), "{err}");
    let eval = format!("eval.data={{format: cifar10, dir: {d}/cifar}}");
    keys.push(&eval);
    let c = cfg(&keys);
    assert!(!c.pretrains_on_eval_train());
    assert_eq!(train_and_evaluate(&c), (30, 6));
}

#[test]
fn a_grayscale_folder_holds_pils_luma_of_each_file() {
    let dir = ScratchDir::new("folder-gray");
    // Constant colours per class: luma (19595 R + 38470 G + 7471 B + 2¹⁵) >> 16.
    let colours = [([200u8, 0, 0], 60u8), ([0, 200, 0], 117), ([0, 0, 200], 23)];
    for split in ["train", "test"] {
        for (k, (rgb, _)) in colours.iter().enumerate() {
            for i in 0..(if split == "train" { 8 } else { 2 }) {
                let chw: Vec<u8> =
                    rgb.iter().flat_map(|&v| std::iter::repeat_n(v, 20 * 26)).collect();
                write_png(&dir.join(format!("{split}/c{k}/{i}.png")), &chw, 20, 26);
            }
        }
    }
    let d = dir.display();
    let c = cfg(&[
        "data.format=image_folder",
        &format!("data.dir={d}/train"),
        &format!("data.test_dir={d}/test"),
        "data.image_size=16",
        "data.channels=1",
        "model.backbone.in_channels=1",
    ]);
    // Constant images: kNN's cosine sees one direction for all three, the probe the levels.
    let (sizes, pixels) = train_and_score_pixels(&c);
    assert_eq!((sizes, pixels.linear_top1), ((24, 6), 1.0));
    let data = EvalData::load(&c).unwrap();
    let (images, labels) = data.train_split();
    assert_eq!(images.size(), [24, 1, 16, 16]);
    for n in 0..24 {
        let want = colours[labels.int64_value(&[n]) as usize].1 as i64;
        let img = images.get(n);
        assert_eq!((img.min().int64_value(&[]), img.max().int64_value(&[])), (want, want));
    }
}

#[test]
fn channels_and_sizes_that_disagree_with_the_model_or_the_format_name_the_key() {
    let load = |extra: &[&str]| {
        let mut o = vec!["data.format=cifar10".to_string(), "data.dir=/nonexistent".into()];
        o.extend(extra.iter().map(|s| s.to_string()));
        config::load(&common::configs().join("simclr-fmnist.yaml"), &o).unwrap_err().to_string()
    };
    let err = load(&[]);
    assert!(err.contains("model.backbone.in_channels") && err.contains("3"), "{err}");
    let err = load(&["model.backbone.in_channels=3", "data.image_size=28"]);
    assert!(err.contains("data.image_size") && err.contains("32"), "{err}");
    let err = load(&["model.backbone.in_channels=3", "data.channels=1"]);
    assert!(err.contains("data.channels"), "{err}");
    let err = load(&["data.format=image_folder", "model.backbone.in_channels=3"]);
    assert!(err.contains("data.image_size"), "{err}");
    let err = load(&["data.format=tiff"]);
    assert!(err.contains("data.format") || err.contains("tiff"), "{err}");
}

#[test]
fn a_corrupt_png_stops_pretraining_naming_it_or_is_skipped_and_listed() {
    let dir = ScratchDir::new("folder-corrupt");
    labelled_folder(&dir.join("train"), 18, 0);
    let bad = dir.join("train/class1/004.png"); // decodes its header, not its data
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let d = dir.display();
    let keys = [
        "data.format=image_folder".to_string(),
        format!("data.dir={d}/train"),
        "data.image_size=24".into(),
    ];
    let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let err = ssl_train::train(&cfg(&keys), None).unwrap_err().to_string();
    assert!(err.contains("004.png") && err.contains("does not decode"), "{err}");
    keys.push("data.on_corrupt=skip");
    let trained = ssl_train::train(&cfg(&keys), None).unwrap();
    assert_eq!(trained.skipped_files, [bad]);
    assert_eq!(trained.losses.len(), 2);
}
