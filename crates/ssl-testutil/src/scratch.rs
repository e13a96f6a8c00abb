//! A scratch directory for tests that write files, removed when it goes out of scope.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// An empty directory under the system's temporary directory, unique to this process and call,
/// and removed with everything in it on drop — also when the test panics, so failed runs leave
/// nothing behind in `/tmp` either.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates `ssl-test-<name>-<pid>-<n>` under [`std::env::temp_dir`].
    ///
    /// # Panics
    /// When the directory cannot be created.
    pub fn new(name: &str) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ssl-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("scratch directory {}: {e}", dir.display()));
        Self(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_and_its_files_are_gone_after_drop_and_names_never_repeat() {
        let (a, b) = (ScratchDir::new("t"), ScratchDir::new("t"));
        assert_ne!(a.path(), b.path());
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::write(a.join("sub").join("f"), b"x").unwrap();
        let kept = a.path().to_path_buf();
        drop(a);
        assert!(!kept.exists(), "{} still exists", kept.display());
        assert!(b.is_dir());
    }

    #[test]
    fn a_panicking_test_leaves_nothing_behind() {
        let path = std::panic::catch_unwind(|| {
            let d = ScratchDir::new("panic");
            std::fs::write(d.join("f"), b"x").unwrap();
            std::panic::panic_any(d.path().to_path_buf());
        })
        .unwrap_err()
        .downcast::<PathBuf>()
        .unwrap();
        assert!(!path.exists(), "{} still exists", path.display());
    }
}
