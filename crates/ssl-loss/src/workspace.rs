//! A scratch buffer a loss reuses across calls, so its large temporaries are not fresh
//! allocations (which glibc maps anew, and the kernel page-faults, on every call).

use std::fmt;
use std::sync::Mutex;

use tch::{Device, Kind, Tensor};

/// One flat scratch tensor, grown on demand and kept between calls.
///
/// It holds no state of the loss: what it contains after a call is garbage, and nothing the
/// loss returns refers to it. A caller that shares one loss between threads gets a fresh buffer
/// while another thread holds this one.
#[derive(Default)]
pub(crate) struct Workspace(Mutex<Option<Tensor>>);

impl Workspace {
    /// Runs `f` with a flat buffer of at least `numel` elements of `kind` on `device`.
    pub(crate) fn with<R>(
        &self,
        numel: i64,
        kind: Kind,
        device: Device,
        f: impl FnOnce(&Tensor) -> R,
    ) -> R {
        let Ok(mut slot) = self.0.try_lock() else {
            return f(&Tensor::empty([numel], (kind, device)));
        };
        let fits = slot
            .as_ref()
            .is_some_and(|t| t.kind() == kind && t.device() == device && t.numel() as i64 >= numel);
        if !fits {
            *slot = None; // free the old buffer before the new one is made
            *slot = Some(Tensor::empty([numel], (kind, device)));
        }
        f(slot.as_ref().expect("filled above"))
    }

    /// Elements currently held (0 when empty).
    fn held(&self) -> usize {
        self.0.lock().map_or(0, |t| t.as_ref().map_or(0, Tensor::numel))
    }
}

impl Clone for Workspace {
    /// A clone starts with an empty buffer of its own.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl fmt::Debug for Workspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Workspace({} elements)", self.held())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_reused_while_it_fits_and_grown_when_not() {
        let ws = Workspace::default();
        let first = ws.with(100, Kind::Float, Device::Cpu, |t| t.data_ptr() as usize);
        let again = ws.with(60, Kind::Float, Device::Cpu, |t| t.data_ptr() as usize);
        assert_eq!(first, again);
        let grown = ws.with(1000, Kind::Float, Device::Cpu, Tensor::numel);
        assert_eq!(grown, 1000);
        let other_kind = ws.with(10, Kind::Double, Device::Cpu, Tensor::kind);
        assert_eq!(other_kind, Kind::Double);
        assert_eq!(format!("{ws:?}"), "Workspace(10 elements)");
    }

    #[test]
    fn a_busy_workspace_hands_out_a_fresh_buffer() {
        let ws = Workspace::default();
        let inner = ws.with(8, Kind::Float, Device::Cpu, |outer| {
            let inner = ws.with(8, Kind::Float, Device::Cpu, |t| t.data_ptr() as usize);
            (outer.data_ptr() as usize, inner)
        });
        assert_ne!(inner.0, inner.1);
    }
}
