//! Any bytes as a CIFAR-10 and a CIFAR-100 binary file: images with labels or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssl_data::{Cifar, Dataset};

fuzz_target!(|data: &[u8]| {
    for cifar in [Cifar::Ten, Cifar::Hundred] {
        if let Ok(set) = cifar.parse(data, std::path::Path::new("fuzz.bin")) {
            assert!(set.len() > 0 && (0..set.len()).all(|i| set.label(i).is_some()));
        }
    }
});
