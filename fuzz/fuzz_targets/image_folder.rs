//! Any bytes as an image file: decoded, and when they decode, written into a one-image folder
//! that `ImageFolder` opens and reads through its random crop and resize (the loader's path).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssl_data::{decode_image_rgb8, Dataset, ImageFolder, ImageFolderConfig};

fuzz_target!(|data: &[u8]| {
    let Ok((w, h, _)) = decode_image_rgb8(data, std::path::Path::new("fuzz")) else { return };
    if w * h > 1 << 20 {
        return; // Large images decode fine; cropping them is slow, not interesting.
    }
    let dir = std::env::temp_dir().join(format!("ssl-fuzz-folder-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let name = if data.starts_with(b"\x89PNG") { "x.png" } else { "x.jpg" };
    std::fs::write(dir.join(name), data).expect("a temporary file");
    let cfg = ImageFolderConfig { size: [7, 5], ..Default::default() };
    if let Ok(set) = ImageFolder::open(&dir, cfg) {
        let mut out = vec![0u8; 3 * 7 * 5];
        let _ = set.try_read_image_at(0, data.len() as u64, &mut out);
    }
    let _ = std::fs::remove_file(dir.join(name));
});
