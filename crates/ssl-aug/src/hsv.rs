//! RGB ↔ HSV on `[N, 3, H, W]` tensors, and the hue rotation built on them.

use tch::{Kind, Tensor};

/// Rotates the hue of each RGB sample by `shift[n]` turns (torchvision `adjust_hue`): RGB →
/// HSV, `h ← (h + shift) mod 1`, → RGB. A shift of 0 returns the sample up to rounding.
///
/// The rotation keeps v = max and the chroma c = max − min, so it goes straight from RGB to
/// RGB: 6h is taken from the channel that holds the maximum (the first one on ties, as
/// torchvision's branches; tied branches give the same hue), and
///
/// ```text
/// channel(n) = v − c·ramp(6·frac(h + shift + (n + 6)/6)),  ramp(k) = clamp(min(k, 4 − k), 0, 1)
/// ```
///
/// for n = 5, 3, 1 (r, g, b): the closed form of the HSV sector table with v·s = c, computed as
/// `m + 6c·clamp(|frac(θ_n) − 1/3| − 1/6, 0, 1/6)` with θ_n = h + shift + (n + 6)/6. It uses
/// only arithmetic libtorch vectorises on the CPU: no `where`, `remainder`, `max` with indices
/// or comparisons (a comparison and its cast to float cost several passes there); the masks
/// of the maximum's channel are `floor(r − v) + 1`, exactly 1 where r = v and 0 below.
///
/// # Shapes
/// `x`: float `[N, 3, H, W]` in `[0, 1]`; `shift`: `[N, 1, 1, 1]` of x's kind → `[N, 3, H, W]`.
pub(crate) fn rotate_hue(x: &Tensor, shift: &Tensor) -> Tensor {
    let compute = match x.kind() {
        Kind::Half | Kind::BFloat16 => Kind::Float,
        k => k,
    };
    let scalar = |v: f64| Tensor::from(v).to_device(x.device()).to_kind(compute); // 0-dim
    let rgb = x.to_kind(compute);
    let (r, g, b) = (rgb.narrow(1, 0, 1), rgb.narrow(1, 1, 1), rgb.narrow(1, 2, 1)); // [N, 1, H, W]
    let v = rgb.amax([1i64].as_slice(), true); // [N, 1, H, W]
    let m = rgb.amin([1i64].as_slice(), true);
    let mut c = &v - &m;
    // Exclusive masks of the maximum's channel: r first, then g, else b (torchvision's order).
    // floor(r − v) is 0 where r = v and −1 below (x − y = 0 only for x = y in IEEE arithmetic).
    // In place throughout: fresh allocations cost more than the passes at these sizes.
    let mut not_r = &r - &v;
    let _ = not_r.floor_(); // −1 where r < v
    let mut below_g = &g - &v;
    let _ = below_g.floor_();
    let is_b = &not_r * &below_g; // neither r nor g reaches v
    let mut is_g = not_r.neg();
    is_g -= &is_b;
    let mut is_r = not_r;
    is_r += 1.0;
    // 6h = (g − b)/c, 2 + (b − r)/c or 4 + (r − g)/c, in [−1, 5); hs = h in turns.
    let mut hs = &g - &b;
    hs *= &is_r;
    let mut t = &b - &r;
    t *= &is_g;
    hs += &t;
    let _ = r.sub_out(&t, &g);
    t *= &is_b;
    hs += &t;
    c *= 6.0;
    hs /= c.clamp_min(1e-30);
    let _ = hs.addcmul_(&is_g, &scalar(2.0 / 6.0));
    let _ = hs.addcmul_(&is_b, &scalar(4.0 / 6.0));
    // θ_n = hs + shift + (n + 6)/6 for n = 5, 3, 1: positive (hs + shift ≥ −1/6 − 1/2).
    let offsets = Tensor::from_slice(&[11.0f64 / 6.0, 9.0 / 6.0, 7.0 / 6.0])
        .to_device(x.device())
        .to_kind(compute)
        .view([1, 3, 1, 1]);
    let mut k = hs + (offsets + shift.to_kind(compute)); // [N, 3, H, W]
    let _ = k.frac_();
    k -= 1.0 / 3.0;
    let _ = k.abs_();
    k -= 1.0 / 6.0;
    let _ = k.clamp_(0.0, 1.0 / 6.0);
    // channel = m + 6c·k, in one pass (out aliasing k element-wise, as an in-place op).
    let k = m.addcmul_out(&k, &k, &c);
    k.to_kind(x.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// RGB in `[0, 1]` to HSV (h, s, v all in `[0, 1]`), as torchvision's `_rgb2hsv`.
    ///
    /// ```text
    /// v = max(r, g, b),  c = v − min(r, g, b),  s = c / v  (0 where c = 0)
    /// h = ((g − b)/c mod 6, (b − r)/c + 2, (r − g)/c + 4 for v = r, g, b) / 6   (0 where c = 0)
    /// ```
    ///
    /// # Shapes
    /// `rgb`: `[N, 3, H, W]` float → `[N, 3, H, W]` (channels h, s, v).
    fn rgb_to_hsv(rgb: &Tensor) -> Tensor {
        let (r, g, b) = (rgb.select(1, 0), rgb.select(1, 1), rgb.select(1, 2)); // [N, H, W] each
        let v = rgb.amax([1i64].as_slice(), false); // [N, H, W]
        let c = &v - rgb.amin([1i64].as_slice(), false);
        let flat = c.eq(0.0);
        let ones = v.ones_like();
        let s = &c / v.where_self(&flat.logical_not(), &ones);
        let cd = c.where_self(&flat.logical_not(), &ones); // chroma, 1 where it is 0
        let (rc, gc, bc) = ((&v - &r) / &cd, (&v - &g) / &cd, (&v - &b) / &cd);
        // torchvision's branches: v = r first, then v = g (≠ r), else b.
        let is_r = v.eq_tensor(&r);
        let is_g = v.eq_tensor(&g).logical_and(&is_r.logical_not());
        let is_b = is_r.logical_or(&is_g).logical_not();
        let h = (&bc - &gc) * is_r.to_kind(rgb.kind())
            + (&rc - &bc + 2.0) * is_g.to_kind(rgb.kind())
            + (&gc - &rc + 4.0) * is_b.to_kind(rgb.kind());
        let h = (h / 6.0 + 1.0).fmod(1.0);
        Tensor::stack(&[h, s, v], 1)
    }

    /// HSV (all in `[0, 1]`) to RGB, with the closed form of the piecewise definition:
    ///
    /// ```text
    /// channel(n) = v − v·s·clamp(min(k, 4 − k), 0, 1),  k = (n + 6h) mod 6,  n = 5, 3, 1 for r, g, b
    /// ```
    ///
    /// which equals torchvision's `_hsv2rgb` sector table on every sector.
    ///
    /// # Shapes
    /// `hsv`: `[N, 3, H, W]` float → `[N, 3, H, W]` RGB.
    fn hsv_to_rgb(hsv: &Tensor) -> Tensor {
        let (h, s, v) = (hsv.narrow(1, 0, 1), hsv.narrow(1, 1, 1), hsv.narrow(1, 2, 1)); // [N, 1, H, W]
        let n = Tensor::from_slice(&[5.0f32, 3.0, 1.0]).to_device(hsv.device()).to_kind(hsv.kind());
        let k = (n.view([1, 3, 1, 1]) + &h * 6.0).remainder(6.0); // [N, 3, H, W]
        let ramp = k.minimum(&(k.neg() + 4.0)).clamp(0.0, 1.0);
        &v - &v * &s * ramp
    }

    /// The textbook rotation: to HSV, shift h, back (torchvision's adjust_hue, step by step).
    fn rotate_via_hsv(x: &Tensor, shift: &Tensor) -> Tensor {
        let hsv = rgb_to_hsv(x);
        let h = (hsv.narrow(1, 0, 1) + shift).remainder(1.0);
        hsv_to_rgb(&Tensor::cat(&[h, hsv.narrow(1, 1, 2)], 1))
    }

    fn pixel(rgb: [f64; 3]) -> Tensor {
        Tensor::from_slice(&rgb).view([1, 3, 1, 1])
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.flatten(0, -1)).unwrap()
    }

    fn close(got: &[f64], want: &[f64]) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn primary_and_secondary_colours_have_their_textbook_hues() {
        let cases = [
            ([1.0, 0.0, 0.0], 0.0),
            ([1.0, 1.0, 0.0], 1.0 / 6.0),
            ([0.0, 1.0, 0.0], 2.0 / 6.0),
            ([0.0, 1.0, 1.0], 3.0 / 6.0),
            ([0.0, 0.0, 1.0], 4.0 / 6.0),
            ([1.0, 0.0, 1.0], 5.0 / 6.0),
        ];
        for (rgb, h) in cases {
            close(&values(&rgb_to_hsv(&pixel(rgb))), &[h, 1.0, 1.0]);
        }
        // (0.9, 0.2, 0.4): v 0.9, chroma 0.7, s 7/9; v = r, h = ((g − b)/c mod 6)/6 = 1 − 1/21.
        close(&values(&rgb_to_hsv(&pixel([0.9, 0.2, 0.4]))), &[1.0 - 1.0 / 21.0, 7.0 / 9.0, 0.9]);
        // Gray: no chroma, hue and saturation 0.
        close(&values(&rgb_to_hsv(&pixel([0.3, 0.3, 0.3]))), &[0.0, 0.0, 0.3]);
    }

    #[test]
    fn hsv_and_back_is_the_identity() {
        let x = Tensor::rand([4, 3, 5, 6], (Kind::Double, Device::Cpu));
        let back = hsv_to_rgb(&rgb_to_hsv(&x));
        assert!(back.allclose(&x, 1e-12, 1e-12, false));
    }

    #[test]
    fn a_third_of_a_turn_maps_red_to_green_to_blue() {
        let shift = Tensor::full([1, 1, 1, 1], 1.0 / 3.0, (Kind::Double, Device::Cpu));
        close(&values(&rotate_hue(&pixel([0.8, 0.1, 0.1]), &shift)), &[0.1, 0.8, 0.1]);
        close(&values(&rotate_hue(&pixel([0.1, 0.8, 0.1]), &shift)), &[0.1, 0.1, 0.8]);
        // (0.9, 0.2, 0.4) by a quarter turn, as torchvision's adjust_hue gives it:
        // [0.7500002384185791, 0.8999999761581421, 0.19999998807907104] (in f32).
        let quarter = Tensor::full([1, 1, 1, 1], 0.25, (Kind::Double, Device::Cpu));
        let got = values(&rotate_hue(&pixel([0.9, 0.2, 0.4]), &quarter));
        for (g, w) in got.iter().zip([0.75, 0.9, 0.2]) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn the_direct_rotation_equals_the_round_trip_through_hsv() {
        let x = Tensor::rand([6, 3, 5, 7], (Kind::Double, Device::Cpu));
        // Some pixels gray (no chroma) and some with tied maxima, where the branches matter.
        let gray = x.narrow(3, 0, 1).narrow(1, 0, 1).expand([6, 3, 5, 1], false);
        x.narrow(3, 0, 1).copy_(&gray);
        x.narrow(3, 1, 1).narrow(1, 1, 1).copy_(&x.narrow(3, 1, 1).narrow(1, 0, 1));
        let shift = Tensor::from_slice(&[0.0, 0.1, -0.25, 0.5, -0.5, 0.37]).view([6, 1, 1, 1]);
        let got = rotate_hue(&x, &shift);
        let want = rotate_via_hsv(&x, &shift);
        let err = f64::try_from((&got - &want).abs().max()).unwrap();
        assert!(err < 1e-12, "max difference {err}");
    }

    #[test]
    fn a_zero_shift_returns_the_sample_up_to_rounding() {
        let x = Tensor::rand([2, 3, 4, 4], (Kind::Float, Device::Cpu));
        let zero = Tensor::zeros([2, 1, 1, 1], (Kind::Float, Device::Cpu));
        assert!(rotate_hue(&x, &zero).allclose(&x, 1e-6, 1e-6, false));
    }
}
