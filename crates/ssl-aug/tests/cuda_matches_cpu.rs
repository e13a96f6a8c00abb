//! The same parameters give the same output on CUDA as on the CPU, op by op and for whole
//! views. Behind the `cuda-tests` feature (`cargo test -p ssl-aug --features cuda-tests`),
//! which fails when no CUDA device is visible rather than passing without one.
#![cfg(feature = "cuda-tests")]

use ssl_aug::{
    aug_rng, Aug, BatchAug, ColorJitterConfig, GaussianBlurConfig, HorizontalFlipConfig,
    NormalizeConfig, PointCloudAugConfig, RandomEqualizeConfig, RandomGrayscaleConfig,
    RandomResizedCropConfig, RandomSolarizeConfig, VerticalFlipConfig, ViewPair,
};
use tch::{Cuda, Device, Kind, Tensor};

fn cuda() -> Device {
    assert!(Cuda::is_available(), "cuda-tests: no CUDA device is visible to libtorch");
    Device::Cuda(0)
}

/// `op` with the same parameters on both devices; the largest difference.
fn both<A: BatchAug>(op: &A, x: &Tensor, seed: u64) -> f64 {
    let params = op.sample(&x.size(), &mut aug_rng(seed, &[]));
    let cpu = op.apply(x, &params);
    let gpu = op.apply(&x.to_device(cuda()), &params).to_device(Device::Cpu);
    assert_eq!((cpu.size(), cpu.kind()), (gpu.size(), gpu.kind()));
    f64::try_from((cpu.to_kind(Kind::Double) - gpu.to_kind(Kind::Double)).abs().max()).unwrap()
}

fn images(kind: Kind) -> Tensor {
    let x = Tensor::rand([16, 3, 40, 36], (Kind::Float, Device::Cpu));
    match kind {
        Kind::Uint8 => (x * 255.0).round().to_kind(Kind::Uint8),
        k => x.to_kind(k),
    }
}

#[test]
fn geometric_ops_agree() {
    let x = images(Kind::Float);
    for antialias in [false, true] {
        let crop = RandomResizedCropConfig { size: [24, 20], antialias, ..Default::default() };
        assert!(both(&crop.build().unwrap(), &x, 1) < 1e-5, "crop, antialias {antialias}");
    }
    assert_eq!(both(&HorizontalFlipConfig { p: 0.5 }.build().unwrap(), &x, 2), 0.0);
    assert_eq!(both(&VerticalFlipConfig { p: 0.5 }.build().unwrap(), &x, 3), 0.0);
}

#[test]
fn colour_ops_agree_in_float_and_uint8() {
    for kind in [Kind::Float, Kind::Uint8] {
        let x = images(kind);
        // Float: rounding; uint8: at most a level where f32 rounding parts at an integer.
        let tol = if kind == Kind::Uint8 { 1.0 } else { 1e-5 };
        let jitter = ColorJitterConfig { p: 1.0, ..Default::default() }.build().unwrap();
        assert!(both(&jitter, &x, 4) <= tol, "jitter {kind:?}");
        let gray = RandomGrayscaleConfig { p: 0.5 }.build().unwrap();
        assert!(both(&gray, &x, 5) <= tol, "grayscale {kind:?}");
        let solarize = RandomSolarizeConfig { threshold: 0.5, p: 0.5 }.build().unwrap();
        assert_eq!(both(&solarize, &x, 6), 0.0, "solarize {kind:?}");
        let blur = GaussianBlurConfig { kernel_size: 5, sigma: [0.1, 2.0], p: 0.5 };
        assert!(both(&blur.build().unwrap(), &x, 7) <= tol, "blur {kind:?}");
        let equalize = RandomEqualizeConfig { p: 0.5 }.build().unwrap();
        assert!(both(&equalize, &x, 8) <= tol, "equalize {kind:?}");
    }
    let norm = NormalizeConfig { mean: vec![0.5, 0.4, 0.3], std: vec![0.2, 0.25, 0.3] };
    assert!(both(&norm.build().unwrap(), &images(Kind::Float), 9) < 1e-5);
}

#[test]
fn whole_views_and_point_clouds_agree() {
    let x = images(Kind::Float);
    for pair in [ViewPair::simclr(32), ViewPair::byol(32)] {
        for view in [pair.view1, pair.view2] {
            let pipeline = view.build().unwrap();
            let cpu = pipeline.forward(&x, &mut aug_rng(10, &[]));
            let gpu = pipeline.forward(&x.to_device(cuda()), &mut aug_rng(10, &[]));
            let err = f64::try_from((cpu - gpu.to_device(Device::Cpu)).abs().max()).unwrap();
            assert!(err < 1e-4, "view off by {err}");
        }
    }
    let points = Tensor::rand([8, 100, 3], (Kind::Float, Device::Cpu));
    let cloud = PointCloudAugConfig::default().build().unwrap();
    assert!(both(&cloud, &points, 11) < 1e-5);
}
