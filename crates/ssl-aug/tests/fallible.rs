//! The fallible twins `Aug::f_forward` and `BatchAug::f_apply`: an input that breaks an op's
//! contract is an error naming the op and both shapes, where `forward` / `apply` panic with
//! the same message; a good input gives exactly what the panicking form gives.

use ssl_aug::{
    aug_rng, Aug, AugError, BatchAug, ColorJitterConfig, GaussianBlurConfig, HorizontalFlipConfig,
    PointCloudAugConfig, RandomResizedCropConfig, RandomSolarizeConfig, ViewConfig,
};
use tch::{Device, Kind, Tensor};

fn image_ops() -> Vec<Box<dyn Aug>> {
    vec![
        Box::new(HorizontalFlipConfig { p: 0.5 }.build().unwrap()),
        Box::new(RandomResizedCropConfig { size: [8, 8], ..Default::default() }.build().unwrap()),
        Box::new(ColorJitterConfig::default().build().unwrap()),
        Box::new(GaussianBlurConfig::default().build().unwrap()),
        Box::new(RandomSolarizeConfig::default().build().unwrap()),
        Box::new(ViewConfig::simclr_cifar(8).build().unwrap()),
    ]
}

#[test]
fn a_batch_of_the_wrong_rank_is_an_error_naming_both_shapes() {
    let x = Tensor::rand([3, 12, 12], (Kind::Float, Device::Cpu)); // no channel axis
    for op in image_ops() {
        let err = op.f_forward(&x, &mut aug_rng(0, &[1])).unwrap_err();
        assert!(matches!(err, AugError::Shape { .. }), "{op:?}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("[3, 12, 12]") && msg.contains("[N, C, H, W]"), "{msg}");
    }
    let points = PointCloudAugConfig::default().build().unwrap();
    let err = points.f_forward(&x, &mut aug_rng(0, &[1])).unwrap_err().to_string();
    assert!(err.contains("[3, 12, 12]") && err.contains("[N, P, 3]"), "{err}");
}

#[test]
fn parameters_of_another_batch_are_an_error_and_the_panic_says_the_same() {
    let flip = HorizontalFlipConfig { p: 0.5 }.build().unwrap();
    let params = flip.sample(&[4, 3, 6, 6], &mut aug_rng(0, &[2]));
    let x = Tensor::rand([5, 3, 6, 6], (Kind::Float, Device::Cpu));
    let err = flip.f_apply(&x, &params).unwrap_err().to_string();
    assert!(
        err.contains("HorizontalFlip") && err.contains("[5, 3, 6, 6]") && err.contains("N = 4"),
        "{err}"
    );
    let panic = std::panic::catch_unwind(|| flip.apply(&x, &params)).unwrap_err();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("[5, 3, 6, 6]") && text.contains("N = 4"), "{text}");
}

#[test]
fn a_good_batch_gives_what_the_panicking_form_gives() {
    let x = Tensor::rand([4, 3, 12, 12], (Kind::Float, Device::Cpu));
    for op in image_ops() {
        let a = op.f_forward(&x, &mut aug_rng(5, &[0])).unwrap();
        let b = op.forward(&x, &mut aug_rng(5, &[0]));
        assert!(a.equal(&b), "{op:?}");
    }
}
