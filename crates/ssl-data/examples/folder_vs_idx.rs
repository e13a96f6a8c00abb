//! The loader's images/s on one set of images read two ways: Fashion-MNIST's IDX file (bytes
//! in memory) and the same images written as 8-bit grayscale PNG files in a flat folder (`ImageFolder`:
//! decoded, centre-cropped and resized on the worker threads, as pre-training from
//! `format: image_folder` reads them). Batch 256, shuffled, 2 workers (the shipped configs'
//! loader settings on these 2-core machines), the median of 3 epochs after one warm-up epoch.
//!
//! `cargo run -p ssl-data --example folder_vs_idx [-- N]` (N images of the test split,
//! default 10,000; data from `$SSL_RS_DATA_DIR` or the Debian package's folder). Prints one
//! JSON line.

use std::sync::Arc;
use std::time::Instant;

use kornia_image::{Image, ImageSize};
use ssl_data::{
    Dataset, IdxImages, ImageFolder, ImageFolderConfig, Loader, LoaderConfig, Split, Subset,
};

const BATCH: usize = 256;
const WORKERS: usize = 2;

/// Median images/s of 3 epochs (after a warm-up epoch) of a loader over `set`.
fn images_per_second<D: Dataset + ?Sized + 'static>(set: Arc<D>) -> f64 {
    let n = set.len();
    let cfg = LoaderConfig {
        batch_size: BATCH,
        workers: WORKERS,
        prefetch: 2,
        shuffle: true,
        drop_last: false,
        seed: 0,
    };
    let loader = Loader::new(set, cfg).expect("a valid loader");
    let mut rates: Vec<f64> = (0..4)
        .map(|epoch| {
            let start = Instant::now();
            let read: usize = loader.epoch(epoch).map(|b| b.indices.len()).sum();
            assert_eq!(read, n);
            n as f64 / start.elapsed().as_secs_f64()
        })
        .skip(1)
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[1]
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(10_000, |s| s.parse().expect("N images"));
    let dir = std::env::var("SSL_RS_DATA_DIR")
        .unwrap_or_else(|_| "/usr/share/datasets/fashion-mnist".into());
    let idx = Arc::new(IdxImages::fashion_mnist(&dir, Split::Test).expect("Fashion-MNIST"));
    let n = n.min(idx.len());
    let idx_part = Arc::new(Subset::new(Arc::clone(&idx), 0..n).expect("a range"));

    let folder = std::env::temp_dir().join(format!("ssl-rs-folder-vs-idx-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("a temporary folder");
    let (h, w) = (idx.height(), idx.width());
    for i in 0..n {
        let gray = idx.image(i).to_vec();
        let image = Image::<u8, 1>::new(ImageSize { width: w, height: h }, gray).expect("28 × 28");
        kornia_io::png::write_image_png_gray8(folder.join(format!("{i:05}.png")), &image)
            .expect("writing a PNG");
    }
    let cfg =
        ImageFolderConfig { size: [h, w], random_crop: false, channels: 1, ..Default::default() };
    let pngs = Arc::new(ImageFolder::open(&folder, cfg).expect("the PNG folder"));
    // The same pixels both ways: a 28-px centre crop resized to 28 px is the image itself.
    let (mut a, mut b) = (vec![0u8; h * w], vec![0u8; h * w]);
    idx_part.read_image(7, &mut a);
    pngs.read_image(7, &mut b);
    assert_eq!(a, b, "the PNG decodes to the IDX bytes");

    let idx_rate = images_per_second(idx_part);
    let png_rate = images_per_second(pngs);
    let _ = std::fs::remove_dir_all(&folder);
    println!(
        "{{\"images\": {n}, \"batch\": {BATCH}, \"workers\": {WORKERS}, \"idx_img_s\": {idx_rate:.0}, \
         \"png_folder_img_s\": {png_rate:.0}, \"png_over_idx\": {:.4}}}",
        png_rate / idx_rate
    );
}
