//! Any text as a run config: a validated `Config` or an error naming the key, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ssl_train::config::from_yaml(text, std::path::Path::new("fuzz.yaml"), &[]);
    }
});
