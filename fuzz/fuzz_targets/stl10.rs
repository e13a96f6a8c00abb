//! Any bytes as STL-10's files: all of them as an unlabelled image file, and split by the first
//! byte into an image file and a label file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (x, y) = (Path::new("fuzz_X.bin"), Path::new("fuzz_y.bin"));
    let _ = ssl_data::parse_stl10(data, None, x, y);
    if let Some((&cut, rest)) = data.split_first() {
        let k = rest.len().saturating_sub(usize::from(cut));
        let _ = ssl_data::parse_stl10(&rest[..k], Some(&rest[k..]), x, y);
    }
});
