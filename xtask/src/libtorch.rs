//! Finding or installing libtorch: a user-given directory or python, else PyTorch 2.11.0 from
//! PyPI in a venv under the per-user cache, shared by every clone and CI run on the machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::shell;

/// The PyTorch release that `tch = "=0.24.0"` is built against.
pub(crate) const TORCH_VERSION: &str = "2.11.0";

/// Free space the venv needs while installing (the wheel and its CUDA libraries are ~4.6 GB).
const INSTALL_BYTES: u64 = 8 << 30;

/// A located libtorch.
#[derive(Debug, Clone)]
pub(crate) struct Libtorch {
    /// The directory holding `lib/` and `include/` (a wheel's `site-packages/torch`).
    pub(crate) dir: PathBuf,
    /// A python whose `import torch` is this libtorch, when known (reference scripts use it).
    pub(crate) python: Option<PathBuf>,
    /// The version string, for example `2.11.0+cu130`, when known.
    pub(crate) version: Option<String>,
}

impl Libtorch {
    /// `lib/`, which binaries need at run time.
    pub(crate) fn lib_dir(&self) -> PathBuf {
        self.dir.join("lib")
    }

    /// Whether this build ships `libtorch_cuda.so` (the PyPI wheel does, even on CPU machines).
    pub(crate) fn has_cuda(&self) -> bool {
        self.lib_dir().join("libtorch_cuda.so").exists()
    }
}

/// Uses the libtorch directory `dir` (what `$LIBTORCH` names).
pub(crate) fn from_dir(dir: &Path) -> Result<Libtorch> {
    let lib = dir.join("lib").join("libtorch_cpu.so");
    if !lib.exists() {
        bail!("libtorch directory {} has no {}", dir.display(), lib.display());
    }
    if !dir.join("include").join("torch").is_dir() {
        bail!("libtorch directory {} has no include/torch (headers are needed)", dir.display());
    }
    let version = read_version(dir);
    if let Some(v) = &version {
        check_version(v, &dir.display().to_string())?;
    }
    Ok(Libtorch { dir: dir.to_path_buf(), python: None, version })
}

/// Uses the PyTorch that `python` imports.
pub(crate) fn from_python(python: &Path) -> Result<Libtorch> {
    let script = "import pathlib, torch\nprint(torch.__version__)\nprint(pathlib.Path(torch.__file__).parent)";
    let out = Command::new(python)
        .args(["-c", script])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} cannot import torch: {}\ninstall it with `{} -m pip install torch=={TORCH_VERSION}`",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim(),
            python.display()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let (Some(version), Some(dir)) = (lines.next(), lines.next()) else {
        bail!("{} printed no torch version and path: {text:?}", python.display());
    };
    check_version(version, &python.display().to_string())?;
    let mut torch = from_dir(Path::new(dir.trim()))?;
    torch.python = Some(python.to_path_buf());
    Ok(torch)
}

/// Uses the cached venv under `cache`, installing PyTorch into it first when it is missing.
pub(crate) fn from_cache(cache: &Path) -> Result<Libtorch> {
    let venv = cache.join(format!("torch-{TORCH_VERSION}"));
    if let Some(torch) = venv_torch(&venv) {
        return Ok(torch);
    }
    eprintln!("xtask: installing PyTorch {TORCH_VERSION} from PyPI into {}", venv.display());
    install(&venv)?;
    venv_torch(&venv).with_context(|| format!("{} has no torch after install", venv.display()))
}

/// The torch inside a finished venv, if there is one.
fn venv_torch(venv: &Path) -> Option<Libtorch> {
    let python = venv.join("bin").join("python");
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    for entry in lib.flatten() {
        let dir = entry.path().join("site-packages").join("torch");
        if dir.join("lib").join("libtorch_cpu.so").exists() {
            let version = read_version(&dir);
            if version.as_deref().is_some_and(|v| v.starts_with(TORCH_VERSION)) {
                return Some(Libtorch { dir, python: Some(python), version });
            }
        }
    }
    None
}

/// Creates the venv in a scratch directory and renames it into place, so an interrupted or
/// concurrent install never leaves a half-written venv at `venv`.
fn install(venv: &Path) -> Result<()> {
    let python3 = which_python3()?;
    let parent = venv.parent().expect("venv has a parent");
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    check_free_space(parent)?;
    let scratch = parent.join(format!(
        "{}.partial-{}",
        venv.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    let made = Command::new(&python3).args(["-m", "venv"]).arg(&scratch).status();
    if !made.is_ok_and(|s| s.success()) {
        bail!(
            "`{python3} -m venv {}` failed: install Python's venv module \
             (Debian/Ubuntu: apt-get install python3-venv)",
            scratch.display()
        );
    }
    let py = scratch.join("bin").join("python");
    if shell::output(Command::new(&py).args(["-m", "pip", "--version"])).is_none() {
        bail!("the new venv has no pip: install it (Debian/Ubuntu: apt-get install python3-pip)");
    }
    let mut pip = Command::new(&py);
    pip.args(["-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check"]);
    pip.arg(format!("torch=={TORCH_VERSION}"));
    shell::run(&mut pip).with_context(|| {
        format!("pip could not install torch=={TORCH_VERSION} (needs PyPI access and ~8 GiB free)")
    })?;
    if venv.exists() {
        // Another clone finished first; keep its venv.
        let _ = std::fs::remove_dir_all(&scratch);
    } else {
        std::fs::rename(&scratch, venv)
            .with_context(|| format!("moving {} to {}", scratch.display(), venv.display()))?;
    }
    Ok(())
}

fn which_python3() -> Result<String> {
    for candidate in ["python3", "python"] {
        if let Some(v) = shell::output(Command::new(candidate).arg("--version")) {
            if v.trim().starts_with("Python 3") {
                return Ok(candidate.to_owned());
            }
        }
    }
    bail!(
        "python3 was not found: it is needed to install PyTorch {TORCH_VERSION} from PyPI \
         (Debian/Ubuntu: apt-get install python3 python3-venv python3-pip), or pass --libtorch DIR"
    )
}

fn check_free_space(dir: &Path) -> Result<()> {
    let Some(df) = shell::output(Command::new("df").args(["-Pk"]).arg(dir)) else {
        return Ok(()); // No df: let pip report a full disk itself.
    };
    let avail_kib: Option<u64> =
        df.lines().nth(1).and_then(|l| l.split_whitespace().nth(3)).and_then(|s| s.parse().ok());
    if let Some(kib) = avail_kib {
        if kib * 1024 < INSTALL_BYTES {
            bail!(
                "installing PyTorch needs about {} GiB free in {}, only {:.1} GiB is: free space \
                 or set SSL_RS_CACHE_DIR to a directory on a larger disk",
                INSTALL_BYTES >> 30,
                dir.display(),
                kib as f64 / (1 << 20) as f64
            );
        }
    }
    Ok(())
}

/// The version from `build-version` (libtorch zips) or `version.py` (wheels).
fn read_version(dir: &Path) -> Option<String> {
    if let Ok(v) = std::fs::read_to_string(dir.join("build-version")) {
        return Some(v.trim().to_owned());
    }
    let py = std::fs::read_to_string(dir.join("version.py")).ok()?;
    let line = py.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split(['\'', '"']).nth(1)?.to_owned())
}

fn check_version(version: &str, what: &str) -> Result<()> {
    let base = version.trim().split('+').next().unwrap_or_default();
    if base != TORCH_VERSION && std::env::var_os("LIBTORCH_BYPASS_VERSION_CHECK").is_none() {
        bail!(
            "{what} is PyTorch {version}, but tch 0.24.0 needs {TORCH_VERSION} \
             (set LIBTORCH_BYPASS_VERSION_CHECK=1 to try anyway)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_read_from_a_wheel_version_py() {
        let dir = std::env::temp_dir().join(format!("xtask-version-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("version.py"), "x = 1\n__version__ = '2.11.0+cu130'\n").unwrap();
        assert_eq!(read_version(&dir).as_deref(), Some("2.11.0+cu130"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn version_check_ignores_the_local_suffix_only() {
        assert!(check_version("2.11.0+cpu", "x").is_ok());
        if std::env::var_os("LIBTORCH_BYPASS_VERSION_CHECK").is_none() {
            let err = check_version("2.10.1", "x").unwrap_err().to_string();
            assert!(err.contains("2.10.1") && err.contains(TORCH_VERSION), "{err}");
        }
    }
}
