//! With the `cuda-tests` feature, links `libtorch_cuda` into the test binaries with
//! `--no-as-needed`, so CUDA is seen on a GPU machine (the linker's default `--as-needed` drops
//! it; see crates/ssl-train/build.rs). Nothing otherwise.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_CUDA_TESTS").is_none() {
        return;
    }
    if let Ok(dir) = std::env::var("LIBTORCH") {
        if Path::new(&dir).join("lib").join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg-tests=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
}
