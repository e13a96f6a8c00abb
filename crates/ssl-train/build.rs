//! Links `libtorch_cuda` into the `ssl` binary with `--no-as-needed`, so CUDA is seen on a GPU
//! machine: torch-sys asks for it, but the linker's default `--as-needed` drops it because no
//! symbol of it is referenced. Only binaries get it (a global `-ltorch_cuda` breaks build scripts).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        if Path::new(&dir).join("lib").join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
}
