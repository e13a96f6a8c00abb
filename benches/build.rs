//! Links `libtorch_cuda` into the bench and example binaries with `--no-as-needed`, so CUDA is seen on a
//! GPU machine (the linker's default `--as-needed` drops it; see crates/ssl-train/build.rs).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        if Path::new(&dir).join("lib").join("libtorch_cuda.so").exists() {
            for kind in ["benches", "examples"] {
                println!("cargo:rustc-link-arg-{kind}=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
            }
        }
    }
}
