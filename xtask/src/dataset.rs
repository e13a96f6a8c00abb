//! Debian packages the project reads at run time: Fashion-MNIST's IDX files and the font of the
//! training plots, installed with apt-get when missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

use crate::shell;

/// Where the Debian package `dataset-fashion-mnist` puts the data.
pub(crate) const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The four files of the dataset, as the package and the original release name them.
pub(crate) const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// The font `ssl train` labels its `curves.png` with (Debian package fonts-dejavu-core).
pub(crate) const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn is_root() -> bool {
    shell::output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0")
}

/// Installs the Debian package `name`, updating the package lists once if the first try fails.
fn apt_install(name: &str) -> Result<()> {
    let install = || {
        shell::run(
            Command::new("apt-get")
                .args(["install", "-y", "-q", name])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        // A fresh machine may have no package lists yet.
        shell::run(Command::new("apt-get").args(["update", "-q"]))?;
        install()?;
    }
    Ok(())
}

/// Makes sure the plot font exists; without root it only warns (plots are then skipped).
pub(crate) fn ensure_font() -> Result<()> {
    if Path::new(FONT).is_file() {
        return Ok(());
    }
    if is_root() {
        return apt_install("fonts-dejavu-core");
    }
    eprintln!("xtask: warning: {FONT} is missing, so runs write no curves.png: install it with `sudo apt-get install fonts-dejavu-core`");
    Ok(())
}

fn missing(dir: &Path) -> Vec<&'static str> {
    FILES.iter().copied().filter(|f| !dir.join(f).is_file()).collect()
}

/// Makes sure `dir` (default [`DEFAULT_DIR`]) holds Fashion-MNIST and returns it.
pub(crate) fn ensure(dir: Option<PathBuf>) -> Result<PathBuf> {
    let custom = dir.is_some();
    let dir = dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let gone = missing(&dir);
    if gone.is_empty() {
        return Ok(dir);
    }
    if custom {
        bail!("data directory {} lacks {}", dir.display(), gone.join(", "));
    }
    if !is_root() {
        bail!(
            "Fashion-MNIST is not in {DEFAULT_DIR}: install it with \
             `sudo apt-get install dataset-fashion-mnist`, or pass --data-dir DIR"
        );
    }
    apt_install("dataset-fashion-mnist")?;
    let gone = missing(&dir);
    if !gone.is_empty() {
        bail!("dataset-fashion-mnist installed but {} lacks {}", dir.display(), gone.join(", "));
    }
    Ok(dir)
}
