//! Antialiased bilinear resampling of per-sample boxes: torchvision's `resized_crop` with
//! `antialias=True`, batched.

use tch::{Kind, Tensor};

use crate::to_float::round_to_levels;

/// The taps of one axis for every sample: `K` input indices and weights per output pixel,
/// flattened as `[N, out, K]` (weight 0, index 0 past a pixel's window).
struct Taps {
    index: Vec<i64>,
    weight: Vec<f32>,
    k: i64,
}

/// PIL's and libtorch's (`_upsample_bilinear2d_aa`) antialiased bilinear weights of the box
/// `start .. start + len` resized to `out` pixels, for each sample; output pixel `i` of a
/// sample with `mirror` takes the weights of `out − 1 − i`.
///
/// ```text
/// scale = len / out,  support = max(scale, 1),  centre_i = scale·(i + ½)
/// w_ij ∝ max(0, 1 − |j + ½ − centre_i| / support)   for box pixels j = 0 … len − 1
/// ```
///
/// normalised to sum 1 per output pixel: when shrinking, the triangle widens with the scale
/// (a low-pass before sampling); when growing, it is plain bilinear clamped at the box edge.
fn taps(boxes: &[(i64, i64)], out: i64, mirror: &[bool]) -> Taps {
    let windows: Vec<Vec<(i64, Vec<f64>)>> = boxes
        .iter()
        .enumerate()
        .map(|(n, &(start, len))| {
            let scale = len as f64 / out as f64;
            let support = scale.max(1.0);
            (0..out)
                .map(|i| {
                    let i = if mirror.get(n).copied().unwrap_or(false) { out - 1 - i } else { i };
                    let centre = scale * (i as f64 + 0.5);
                    let lo = ((centre - support + 0.5).floor() as i64).max(0);
                    let hi = ((centre + support + 0.5).floor() as i64).min(len);
                    let mut w: Vec<f64> = (lo..hi)
                        .map(|j| (1.0 - ((j as f64 + 0.5 - centre) / support).abs()).max(0.0))
                        .collect();
                    let total: f64 = w.iter().sum();
                    w.iter_mut().for_each(|v| *v /= total);
                    (start + lo, w)
                })
                .collect()
        })
        .collect();
    let k = windows.iter().flatten().map(|(_, w)| w.len()).max().unwrap_or(1) as i64;
    let mut taps = Taps { index: Vec::new(), weight: Vec::new(), k };
    for (first, w) in windows.iter().flatten() {
        for t in 0..k as usize {
            let inside = t < w.len();
            taps.index.push(if inside { first + t as i64 } else { 0 });
            taps.weight.push(if inside { w[t] as f32 } else { 0.0 });
        }
    }
    taps
}

/// Resamples `x` along `dim` (2 or 3) with `taps` of `out` pixels: `Σ_t w_t · x[…, index_t, …]`,
/// one gather and one multiply-add per tap.
fn resample(x: &Tensor, dim: i64, taps: &Taps, out: i64) -> Tensor {
    let size = x.size();
    let n = size[0];
    let mut shape = size.clone();
    shape[dim as usize] = out;
    // [N, 1, out, 1] down the rows or [N, 1, 1, out] across the columns.
    let view: Vec<i64> = if dim == 2 { vec![n, 1, out, 1] } else { vec![n, 1, 1, out] };
    let (device, kind) = (x.device(), x.kind());
    let index = Tensor::from_slice(&taps.index).view([n, out, taps.k]).to_device(device);
    let weight =
        Tensor::from_slice(&taps.weight).view([n, out, taps.k]).to_device(device).to_kind(kind);
    let mut y: Option<Tensor> = None;
    for t in 0..taps.k {
        let at = index.select(2, t).view(view.as_slice()).expand(shape.as_slice(), false);
        let w = weight.select(2, t).view(view.as_slice());
        let picked = x.gather(dim, &at, false);
        y = Some(match y {
            None => picked * w,
            Some(mut y) => {
                let _ = y.addcmul_(&picked, &w);
                y
            }
        });
    }
    y.expect("at least one tap")
}

/// The boxes `[top, left, height, width]` of `x` resized to `[oh, ow]` with antialiasing, as
/// torchvision's `resized_crop(…, antialias=True)` of each sample (horizontal pass, then
/// vertical, as libtorch); samples with `mirror[i]` come out flipped left–right.
///
/// uint8 input is resampled in f32 and rounded to levels after each pass, as PIL and
/// libtorch's uint8 kernel keep the intermediate image in uint8. Only pixels inside a box
/// contribute to its output. Cost: `K` gathers per axis, `K` the
/// widest window of the batch (2 when growing, about `2·len/out + 1` when shrinking).
///
/// # Shapes
/// `x`: float or uint8 `[N, C, H, W]` → `[N, C, oh, ow]` of its dtype.
pub(crate) fn resized_crop(
    x: &Tensor,
    boxes: &[[i64; 4]],
    [oh, ow]: [i64; 2],
    mirror: &[bool],
) -> Tensor {
    let compute = match x.kind() {
        Kind::Double => Kind::Double,
        _ => Kind::Float,
    };
    let levels = x.kind() == Kind::Uint8;
    let to_levels = |y: Tensor| if levels { round_to_levels(y) } else { y };
    let across: Vec<(i64, i64)> = boxes.iter().map(|b| (b[1], b[3])).collect();
    let down: Vec<(i64, i64)> = boxes.iter().map(|b| (b[0], b[2])).collect();
    let y = resample(&x.to_kind(compute), 3, &taps(&across, ow, mirror), ow); // [N, C, H, ow]
    let y = to_levels(resample(&to_levels(y), 2, &taps(&down, oh, &[]), oh)); // [N, C, oh, ow]
    y.to_kind(x.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn halving_weighs_three_pixels_with_the_triangle_of_half_width_two() {
        // 4 → 2: scale 2, centres 1 and 3, weights 1 − |j + ½ − c|/2 inside the box:
        // output 0 gets pixels 0, 1, 2 with (¾, ¾, ¼)/1¾, output 1 pixels 1, 2, 3 with
        // (¼, ¾, ¾)/1¾.
        let t = taps(&[(0, 4)], 2, &[]);
        assert_eq!(t.k, 3);
        let want = [3.0f32 / 7.0, 3.0 / 7.0, 1.0 / 7.0, 1.0 / 7.0, 3.0 / 7.0, 3.0 / 7.0];
        for (got, want) in t.weight.iter().zip(want) {
            assert!((got - want).abs() < 1e-7, "{:?}", t.weight);
        }
        assert_eq!(t.index, [0, 1, 2, 1, 2, 3]);
    }

    #[test]
    fn growing_is_bilinear_clamped_at_the_box_edge() {
        // Box of 2 pixels (values 0 and 1) to 4: centres 0.25, 0.75, 1.25, 1.75 → sample
        // positions −0.25, 0.25, 0.75, 1.25 clamped: 0, 0.25, 0.75, 1.
        let x = Tensor::from_slice(&[5.0f64, 0.0, 1.0, 7.0]).view([1, 1, 1, 4]);
        let y = resized_crop(&x, &[[0, 1, 1, 2]], [1, 4], &[]);
        let got = Vec::<f64>::try_from(y.flatten(0, -1)).unwrap();
        for (g, w) in got.iter().zip([0.0, 0.25, 0.75, 1.0]) {
            assert!((g - w).abs() < 1e-7, "{got:?}");
        }
    }

    #[test]
    fn a_constant_stays_constant_and_mirroring_reverses_the_columns() {
        let x = Tensor::full([2, 3, 11, 13], 0.4, (Kind::Float, Device::Cpu));
        let boxes = [[0, 0, 11, 13], [2, 3, 7, 5]];
        let y = resized_crop(&x, &boxes, [3, 4], &[]);
        assert!(y.allclose(&x.narrow(2, 0, 3).narrow(3, 0, 4), 1e-6, 1e-6, false));
        let z = Tensor::rand([2, 3, 11, 13], (Kind::Double, Device::Cpu));
        let plain = resized_crop(&z, &boxes, [3, 4], &[]);
        let mirrored = resized_crop(&z, &boxes, [3, 4], &[true, false]);
        assert!(mirrored.get(0).allclose(&plain.get(0).flip([2]), 1e-12, 1e-12, false));
        assert!(mirrored.get(1).allclose(&plain.get(1), 1e-12, 1e-12, false));
    }
}
