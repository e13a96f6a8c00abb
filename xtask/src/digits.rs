//! scikit-learn's handwritten digits (`sklearn/datasets/data/digits.csv.gz`), the second real
//! labelled image set of the transfer evaluation: taken out of the scikit-learn wheel on PyPI
//! (no Debian package but Fashion-MNIST holds images), without installing scikit-learn.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::shell;

/// The wheel the file comes from.
const WHEEL: &str = "scikit-learn==1.9.1";
/// The file's path inside the wheel.
const MEMBER: &str = "sklearn/datasets/data/digits.csv.gz";

/// Makes sure `<cache>/digits/digits.csv.gz` exists, downloading the wheel with `python`'s pip
/// when it does not, and returns its path.
pub(crate) fn ensure(cache: &Path, python: Option<&Path>) -> Result<PathBuf> {
    let dir = cache.join("digits");
    let path = dir.join("digits.csv.gz");
    if path.is_file() {
        return Ok(path);
    }
    let python = python.map_or_else(|| PathBuf::from("python3"), Path::to_path_buf);
    let wheels = dir.join("wheel");
    std::fs::create_dir_all(&wheels).with_context(|| format!("creating {}", wheels.display()))?;
    shell::run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
            ])
            .arg(&wheels)
            .arg(WHEEL),
    )?;
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .with_context(|| format!("pip downloaded no wheel of {WHEEL} into {}", wheels.display()))?;
    let script = "import sys, zipfile\nopen(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))";
    let tmp = dir.join("digits.csv.gz.part");
    shell::run(Command::new(&python).args(["-c", script]).arg(&wheel).arg(MEMBER).arg(&tmp))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    std::fs::remove_dir_all(&wheels).ok();
    if !path.is_file() {
        bail!("{} is missing after extracting {MEMBER} from {}", path.display(), wheel.display());
    }
    Ok(path)
}
