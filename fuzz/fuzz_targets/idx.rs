//! Any bytes into the IDX parser: an `IdxArray` or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ssl_data::parse_idx(data, std::path::Path::new("fuzz.idx"));
});
