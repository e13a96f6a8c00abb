//! Shared helpers of the criterion benches: the devices to run on, named for report rows.

use std::time::{Duration, Instant};

use tch::Device;

pub mod aug_cases;
pub mod loss_cases;

/// A device a benchmark runs on, with the prefix its benchmark names carry (`cpu/…`).
#[derive(Debug, Clone, Copy)]
pub struct BenchDevice(Device);

impl BenchDevice {
    /// The CPU always, and the first CUDA device when libtorch sees one.
    pub fn available() -> Vec<BenchDevice> {
        let mut devices = vec![BenchDevice(Device::Cpu)];
        if tch::Cuda::is_available() {
            devices.push(BenchDevice(Device::Cuda(0)));
        }
        devices
    }

    /// The libtorch device.
    pub fn device(self) -> Device {
        self.0
    }

    /// The prefix of benchmark names: `cpu` or `cuda`.
    pub fn name(self) -> &'static str {
        match self.0 {
            Device::Cpu => "cpu",
            _ => "cuda",
        }
    }

    /// Waits for queued GPU work, so the clock reads finished work (a no-op on the CPU).
    pub fn sync(self) {
        if let Device::Cuda(i) = self.0 {
            tch::Cuda::synchronize(i as i64);
        }
    }

    /// Wall time of `iters` calls of `f`, synchronised before starting and before stopping the
    /// clock: the body of criterion's `iter_custom`.
    pub fn time(self, iters: u64, mut f: impl FnMut()) -> Duration {
        self.sync();
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        self.sync();
        start.elapsed()
    }
}
