//! IDX files on disk: gzip and raw, errors that name the file, and the real Fashion-MNIST that
//! `cargo xtask setup` installs (its directory comes from `SSL_RS_DATA_DIR`).

use std::io::Write;
use std::path::Path;

use ssl_data::{encode_idx as idx, IdxImages, Split};
use ssl_testutil::ScratchDir;

fn scratch(name: &str) -> ScratchDir {
    ScratchDir::new(&format!("idx-{name}"))
}

fn write_gz(path: &Path, bytes: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

#[test]
fn reads_gzip_images_with_labels_and_raw_images_without() {
    let dir = scratch("ok");
    let pixels: Vec<u8> = (0..2 * 2 * 3).collect();
    write_gz(&dir.join("train-images-idx3-ubyte.gz"), &idx(&[2, 2, 3], &pixels));
    write_gz(&dir.join("train-labels-idx1-ubyte.gz"), &idx(&[2], &[7, 1]));
    let set = IdxImages::fashion_mnist(&dir, Split::Train).unwrap();
    assert_eq!((set.len(), set.height(), set.width()), (2, 2, 3));
    assert_eq!(set.image(1), &[6, 7, 8, 9, 10, 11]);
    assert_eq!(set.labels(), Some(&[7u8, 1][..]));
    assert_eq!(Vec::<i64>::try_from(set.labels_tensor().unwrap()).unwrap(), [7, 1]);
    assert_eq!(set.to_tensor().size(), [2, 1, 2, 3]);
    assert_eq!(set.to_tensor().int64_value(&[1, 0, 1, 2]), 11);

    std::fs::write(dir.join("raw"), idx(&[1, 1, 2], &[5, 6])).unwrap();
    let raw = IdxImages::from_files(&dir.join("raw"), None).unwrap();
    assert_eq!((raw.pixels(), raw.labels()), (&[5u8, 6][..], None));
    assert!(raw.labels_tensor().is_none());
}

#[test]
fn errors_name_the_file_for_counts_ranks_truncation_and_missing_files() {
    let dir = scratch("bad");
    let images = dir.join("img");
    std::fs::write(&images, idx(&[3, 1, 1], &[1, 2, 3])).unwrap();
    std::fs::write(dir.join("lab"), idx(&[2], &[0, 1])).unwrap();
    let err = IdxImages::from_files(&images, Some(&dir.join("lab"))).unwrap_err().to_string();
    assert!(err.contains("3 images") && err.contains("2 labels") && err.contains("lab"), "{err}");

    std::fs::write(dir.join("flat"), idx(&[3], &[1, 2, 3])).unwrap();
    let err = IdxImages::from_files(&dir.join("flat"), None).unwrap_err().to_string();
    assert!(err.contains("flat") && err.contains("3-D"), "{err}");

    let mut truncated = idx(&[2, 2, 2], &[0; 8]);
    truncated.truncate(truncated.len() - 3);
    write_gz(&dir.join("short.gz"), &truncated);
    let err = IdxImages::from_files(&dir.join("short.gz"), None).unwrap_err().to_string();
    assert!(err.contains("short.gz") && err.contains("announces 8 bytes"), "{err}");

    std::fs::write(dir.join("broken.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    let err = IdxImages::from_files(&dir.join("broken.gz"), None).unwrap_err().to_string();
    assert!(err.contains("broken.gz"), "{err}");

    let err = IdxImages::fashion_mnist(dir.join("nowhere"), Split::Test).unwrap_err().to_string();
    assert!(err.contains("t10k-images-idx3-ubyte.gz"), "{err}");
}

#[test]
fn the_real_fashion_mnist_has_its_published_sizes_and_balanced_classes() {
    let dir = std::env::var("SSL_RS_DATA_DIR")
        .expect("SSL_RS_DATA_DIR is unset: run `cargo xtask setup` first (it installs the data)");
    for (split, n) in [(Split::Train, 60_000usize), (Split::Test, 10_000)] {
        let set = IdxImages::fashion_mnist(&dir, split).unwrap();
        assert_eq!((set.len(), set.height(), set.width()), (n, 28, 28));
        let mut counts = [0usize; 10];
        for &l in set.labels().unwrap() {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [n / 10; 10], "{split:?}: every class has N / 10 images");
    }
}
