//! Winograd's F(4×4, 3×3) against libtorch's direct convolution (an independent computation of
//! the same cross-correlation): outputs and both gradients, every tiling case, both layouts,
//! and a hand-computed case.

use ssl_models::winograd_conv3x3;
use ssl_testutil::seed_global_rng;
use tch::{Device, Kind, Tensor};

/// Largest absolute difference over the largest magnitude of `want`.
fn rel(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.size(), want.size());
    let scale = want.abs().max().double_value(&[]).max(1e-12);
    (got - want).abs().max().double_value(&[]) / scale
}

fn nhwc(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Output, input gradient and weight gradient of both algorithms for one shape and layout.
fn check(n: i64, c: i64, co: i64, h: i64, w: i64, channels_last: bool) {
    let opts = (Kind::Float, Device::Cpu);
    let mut x = Tensor::randn([n, c, h, w], opts);
    let mut k = Tensor::randn([co, c, 3, 3], opts) / (9.0 * c as f64).sqrt();
    if channels_last {
        (x, k) = (nhwc(&x), nhwc(&k));
    }
    let (x, k) = (x.set_requires_grad(true), k.set_requires_grad(true));
    let g = Tensor::randn([n, co, h, w], opts); // the upstream gradient
    let direct = x.conv2d(&k, None::<Tensor>, [1], [1], [1], 1);
    let wino = winograd_conv3x3(&x, &k);
    let case = format!("[{n}, {c}, {h}, {w}] → {co}, channels-last {channels_last}");
    assert!(rel(&wino, &direct) < 1e-5, "{case}: output off by {}", rel(&wino, &direct));
    if h * w > 1 && co > 1 {
        // The layout is only defined (NCHW and NHWC strides differ) with pixels and channels.
        let kept = if channels_last { wino.stride()[1] == 1 } else { wino.is_contiguous() };
        assert!(kept, "{case}: the output's strides {:?}", wino.stride());
    }
    let dd = Tensor::run_backward(&[(&direct * &g).sum(Kind::Float)], &[&x, &k], false, false);
    let dw = Tensor::run_backward(&[(&wino * &g).sum(Kind::Float)], &[&x, &k], false, false);
    assert!(rel(&dw[0], &dd[0]) < 1e-5, "{case}: input gradient off by {}", rel(&dw[0], &dd[0]));
    assert!(rel(&dw[1], &dd[1]) < 1e-5, "{case}: weight gradient off by {}", rel(&dw[1], &dd[1]));
}

#[test]
fn outputs_and_gradients_equal_the_direct_convolutions() {
    let _rng = seed_global_rng(11); // draws: inputs, weights, upstream gradients
    for channels_last in [false, true] {
        check(2, 3, 5, 8, 8, channels_last); // whole tiles
        check(3, 4, 2, 7, 5, channels_last); // partial tiles in both directions
        check(2, 6, 3, 1, 1, channels_last); // one pixel: only the filter's centre
        check(1, 2, 4, 9, 4, channels_last); // one image, tall
        check(4, 130, 129, 4, 4, channels_last); // wide, as ResNet-18's stage 4
    }
}

#[test]
fn all_ones_give_the_count_of_each_pixels_neighbours() {
    // A 3 × 3 box filter of ones over zero padding counts each pixel's in-image neighbourhood:
    // 4 in the corners, 6 along the edges, 9 inside; two input channels double it.
    let x = Tensor::ones([1, 2, 5, 6], (Kind::Float, Device::Cpu));
    let k = Tensor::ones([1, 2, 3, 3], (Kind::Float, Device::Cpu));
    let y = winograd_conv3x3(&x, &k);
    let mut want = vec![0f32; 30];
    for i in 0..5i64 {
        for j in 0..6i64 {
            let rows = 3 - i64::from(i == 0) - i64::from(i == 4);
            let cols = 3 - i64::from(j == 0) - i64::from(j == 5);
            want[(i * 6 + j) as usize] = (2 * rows * cols) as f32;
        }
    }
    let want = Tensor::from_slice(&want).view([1, 1, 5, 6]);
    assert!((&y - &want).abs().max().double_value(&[]) < 1e-4, "{y}");
}

#[test]
#[should_panic(expected = "input [2, 3, 8, 8] and weight [4, 2, 3, 3]")]
fn mismatched_channels_name_both_shapes() {
    let x = Tensor::zeros([2, 3, 8, 8], (Kind::Float, Device::Cpu));
    let _ = winograd_conv3x3(&x, &Tensor::zeros([4, 2, 3, 3], (Kind::Float, Device::Cpu)));
}
