//! Views of point clouds `[N, P, 3]`: random rotation, scaling, jitter and point dropout.

use tch::Tensor;

use crate::aug::rows_of;
use crate::rng::{bernoulli, uniform};
use crate::{AugError, AugRng, BatchAug, BatchParams, Result};

/// Which rotations [`PointCloudAug`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Rotation {
    /// None.
    None,
    /// About the vertical (z) axis by an angle ~ U(0, 2π) (ModelNet/ShapeNet practice).
    AboutZ,
    /// Uniformly over SO(3) (Shoemake's uniform random unit quaternion).
    Uniform,
}

/// Settings of [`PointCloudAug`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct PointCloudAugConfig {
    /// The rotation drawn per cloud.
    pub rotation: Rotation,
    /// Range of an isotropic scale factor per cloud (PointNet++: `[0.8, 1.25]`).
    pub scale: [f64; 2],
    /// σ of Gaussian per-point jitter (PointNet: 0.01).
    pub jitter_sigma: f64,
    /// Jitter clipped to `[−clip, clip]` (PointNet: 0.05).
    pub jitter_clip: f64,
    /// Fraction of points dropped per cloud, drawn from `U(0, max_dropout)` (PointNet++: 0.875);
    /// a dropped point is replaced by the cloud's first point, so the shape stays `[N, P, 3]`.
    pub max_dropout: f64,
}

impl Default for PointCloudAugConfig {
    /// PointNet / PointNet++ training augmentation (Qi et al. 2017a, 2017b), with rotation
    /// about z.
    fn default() -> Self {
        Self {
            rotation: Rotation::AboutZ,
            scale: [0.8, 1.25],
            jitter_sigma: 0.01,
            jitter_clip: 0.05,
            max_dropout: 0.875,
        }
    }
}

impl PointCloudAugConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`AugError::InvalidConfig`] for a reversed or non-positive scale range, a negative or
    /// non-finite jitter, or `max_dropout` outside `[0, 1)`.
    pub fn build(self) -> Result<PointCloudAug> {
        let bad = |field, value: String, reason| {
            Err(AugError::InvalidConfig { op: "point_cloud", field, value, reason })
        };
        let [lo, hi] = self.scale;
        if !(0.0 < lo && lo <= hi && hi.is_finite()) {
            return bad("scale", format!("{:?}", self.scale), "needs 0 < min ≤ max");
        }
        for (field, v) in [("jitter_sigma", self.jitter_sigma), ("jitter_clip", self.jitter_clip)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, v.to_string(), "must be a finite number ≥ 0");
            }
        }
        if !(0.0..1.0).contains(&self.max_dropout) {
            return bad("max_dropout", self.max_dropout.to_string(), "must be in [0, 1)");
        }
        Ok(PointCloudAug { cfg: self })
    }
}

/// A random view of each cloud: `y = s · R x + ε` with ε ~ clip(N(0, σ²)), then dropout.
///
/// # Shapes
/// `x`: float `[N, P, 3]` → `[N, P, 3]`.
#[derive(Debug, Clone, Copy)]
pub struct PointCloudAug {
    cfg: PointCloudAugConfig,
}

/// Per-cloud rotation, scale, jitter and dropped points of [`PointCloudAug`].
#[derive(Debug, Clone, PartialEq)]
pub struct PointCloudParams {
    /// Row-major 3 × 3 rotation per cloud.
    pub rotation: Vec<[f32; 9]>,
    /// Scale per cloud.
    pub scale: Vec<f32>,
    /// Jitter per point, row-major `[N, P, 3]` (empty when σ = 0).
    pub jitter: Vec<f32>,
    /// Whether each point is dropped, row-major `[N, P]`.
    pub dropped: Vec<bool>,
    /// Points per cloud.
    pub points: usize,
}

impl BatchParams for PointCloudParams {
    fn len(&self) -> usize {
        self.scale.len()
    }

    fn rows(&self, start: usize, len: usize) -> Self {
        let p = self.points;
        let jitter = if self.jitter.is_empty() {
            Vec::new()
        } else {
            rows_of(&self.jitter, start * p * 3, len * p * 3)
        };
        Self {
            rotation: rows_of(&self.rotation, start, len),
            scale: rows_of(&self.scale, start, len),
            jitter,
            dropped: rows_of(&self.dropped, start * p, len * p),
            points: p,
        }
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut AugRng) -> f64 {
    let u1 = uniform(rng, f64::MIN_POSITIVE, 1.0);
    let u2 = uniform(rng, 0.0, 1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A rotation matrix, row-major.
fn rotation(kind: Rotation, rng: &mut AugRng) -> [f32; 9] {
    let m = match kind {
        Rotation::None => [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        Rotation::AboutZ => {
            let (s, c) = uniform(rng, 0.0, std::f64::consts::TAU).sin_cos();
            [c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0]
        }
        Rotation::Uniform => {
            // Shoemake, "Uniform random rotations", Graphics Gems III, 1992.
            let (u1, u2, u3) =
                (uniform(rng, 0.0, 1.0), uniform(rng, 0.0, 1.0), uniform(rng, 0.0, 1.0));
            let (a, b) = ((1.0 - u1).sqrt(), u1.sqrt());
            let t = std::f64::consts::TAU;
            let (w, x, y, z) =
                (a * (t * u2).sin(), a * (t * u2).cos(), b * (t * u3).sin(), b * (t * u3).cos());
            [
                1.0 - 2.0 * (y * y + z * z),
                2.0 * (x * y - z * w),
                2.0 * (x * z + y * w),
                2.0 * (x * y + z * w),
                1.0 - 2.0 * (x * x + z * z),
                2.0 * (y * z - x * w),
                2.0 * (x * z - y * w),
                2.0 * (y * z + x * w),
                1.0 - 2.0 * (x * x + y * y),
            ]
        }
    };
    m.map(|v| v as f32)
}

impl BatchAug for PointCloudAug {
    type Params = PointCloudParams;

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> PointCloudParams {
        let (n, p) = (size[0] as usize, size[1] as usize);
        let c = self.cfg;
        let mut params = PointCloudParams {
            rotation: Vec::with_capacity(n),
            scale: Vec::with_capacity(n),
            jitter: Vec::new(),
            dropped: Vec::with_capacity(n * p),
            points: p,
        };
        for _ in 0..n {
            params.rotation.push(rotation(c.rotation, rng));
            params.scale.push(uniform(rng, c.scale[0], c.scale[1]) as f32);
            if c.jitter_sigma > 0.0 {
                params.jitter.extend((0..3 * p).map(|_| {
                    (c.jitter_sigma * normal(rng)).clamp(-c.jitter_clip, c.jitter_clip) as f32
                }));
            }
            let rate = uniform(rng, 0.0, c.max_dropout);
            params.dropped.extend((0..p).map(|_| bernoulli(rng, rate)));
        }
        params
    }

    fn check_apply_input(&self, size: &[i64], n: usize) -> crate::Result<()> {
        if size.len() == 3 && size[0] as usize == n && size[2] == 3 {
            return Ok(());
        }
        Err(crate::AugError::Shape {
            op: "PointCloudAug".into(),
            got: size.to_vec(),
            expected: format!("[N, P, 3] with N = {n}"),
        })
    }

    fn apply(&self, x: &Tensor, params: &PointCloudParams) -> Tensor {
        let size = x.size();
        let n = params.scale.len();
        assert!(
            size.len() == 3
                && size[0] as usize == n
                && size[2] == 3
                && size[1] as usize == params.points,
            "PointCloudAug: x {size:?} must be [N, P, 3] with N = {n}, P = {} (the parameters')",
            params.points
        );
        let (kind, device) = (x.kind(), x.device());
        let flat: Vec<f32> = params.rotation.iter().flatten().copied().collect();
        let r = Tensor::from_slice(&flat).view([n as i64, 3, 3]).to_device(device).to_kind(kind);
        let s = Tensor::from_slice(&params.scale)
            .view([n as i64, 1, 1])
            .to_device(device)
            .to_kind(kind);
        let mut y = x.bmm(&r.transpose(1, 2)) * s; // [N, P, 3]: rows rotated, then scaled
        if !params.jitter.is_empty() {
            y += Tensor::from_slice(&params.jitter)
                .view([n as i64, -1, 3])
                .to_device(device)
                .to_kind(kind);
        }
        if params.dropped.iter().any(|&d| d) {
            let dropped =
                Tensor::from_slice(&params.dropped).view([n as i64, -1, 1]).to_device(device);
            y = y.narrow(1, 0, 1).expand_as(&y).where_self(&dropped, &y);
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::{Device, Kind};

    fn plain(rotation: Rotation) -> PointCloudAug {
        PointCloudAugConfig {
            rotation,
            scale: [1.0, 1.0],
            jitter_sigma: 0.0,
            jitter_clip: 0.0,
            max_dropout: 0.0,
        }
        .build()
        .unwrap()
    }

    #[test]
    fn rotations_keep_norms_and_pairwise_distances() {
        let x = Tensor::randn([4, 50, 3], (Kind::Double, Device::Cpu));
        for kind in [Rotation::AboutZ, Rotation::Uniform] {
            let op = plain(kind);
            let p = op.sample(&x.size(), &mut aug_rng(1, &[]));
            let y = op.apply(&x, &p);
            let d = |t: &Tensor| {
                t.unsqueeze(2).g_sub(&t.unsqueeze(1)).square().sum_dim_intlist(
                    3,
                    false,
                    Kind::Double,
                )
            };
            assert!(d(&y).allclose(&d(&x), 1e-5, 1e-5, false), "{kind:?}"); // f32 matrices
            for m in &p.rotation {
                let r = Tensor::from_slice(m).to_kind(Kind::Double).view([3, 3]);
                assert!((r.det().double_value(&[]) - 1.0).abs() < 1e-5, "{kind:?}: det");
            }
        }
        // About z, the z coordinates do not move.
        let op = plain(Rotation::AboutZ);
        let y = op.apply(&x, &op.sample(&x.size(), &mut aug_rng(2, &[])));
        assert!(y.select(2, 2).allclose(&x.select(2, 2), 1e-6, 1e-6, false));
    }

    #[test]
    fn uniform_rotations_spread_a_vector_evenly_over_the_sphere() {
        // R e_z is uniform on the sphere: its z coordinate is U(−1, 1), mean 0, variance 1/3.
        let op = plain(Rotation::Uniform);
        let p = op.sample(&[20_000, 1, 3], &mut aug_rng(3, &[]));
        let z: Vec<f64> = p.rotation.iter().map(|m| m[8] as f64).collect();
        let mean = z.iter().sum::<f64>() / z.len() as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / z.len() as f64;
        assert!(mean.abs() < 0.015 && (var - 1.0 / 3.0).abs() < 0.01, "{mean} {var}");
    }

    #[test]
    fn scale_jitter_and_dropout_follow_their_settings() {
        let cfg = PointCloudAugConfig {
            rotation: Rotation::None,
            scale: [2.0, 2.0],
            jitter_sigma: 0.01,
            jitter_clip: 0.02,
            max_dropout: 0.5,
        };
        let op = cfg.build().unwrap();
        let x = Tensor::randn([200, 100, 3], (Kind::Float, Device::Cpu));
        let p = op.sample(&x.size(), &mut aug_rng(4, &[]));
        assert!(p.jitter.iter().all(|j| j.abs() <= 0.02));
        // Dropout rate ~ U(0, 0.5) per cloud: on average 0.25 of the points.
        let rate = p.dropped.iter().filter(|&&d| d).count() as f64 / p.dropped.len() as f64;
        assert!((rate - 0.25).abs() < 0.03, "{rate}");
        let y = op.apply(&x, &p);
        let kept = Tensor::from_slice(&p.dropped).view([200, 100, 1]).logical_not();
        let want = &x * 2.0 + Tensor::from_slice(&p.jitter).view([200, 100, 3]);
        let err =
            (&y - want).abs().where_self(&kept, &Tensor::zeros([], (Kind::Float, Device::Cpu)));
        assert!(err.max().double_value(&[]) < 1e-6);
    }

    #[test]
    fn bad_settings_are_rejected_naming_the_field() {
        let bad = |c: PointCloudAugConfig| c.build().unwrap_err().to_string();
        let base = PointCloudAugConfig::default();
        assert!(bad(PointCloudAugConfig { max_dropout: 1.0, ..base })
            .contains("point_cloud.max_dropout"));
        assert!(
            bad(PointCloudAugConfig { scale: [1.0, 0.5], ..base }).contains("point_cloud.scale")
        );
    }
}
