//! Winograd's minimal filtering F(4×4, 3×3) for a stride-1, padding-1, 3×3 convolution, built
//! from libtorch tensor ops so that autograd differentiates it.
//!
//! Paper: Lavin, Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016,
//! <https://arxiv.org/abs/1509.09308>, §4 and the F(4×4, 3×3) matrices of §4.2.
//!
//! Each 4 × 4 output tile `Y` of one channel pair comes from the 6 × 6 input tile `d` around it
//! and the 3 × 3 filter `g`:
//!
//! ```text
//! Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
//! ```
//!
//! so the products over channels are 36 independent matrix products (one per tile element) of
//! `[tiles, C_in] × [C_in, C_out]`: 36 · 16⁻¹ = 2.25 multiplications per output element and
//! channel pair instead of the direct convolution's 9, a 4× saving. The transforms are
//! Kronecker products (`Bᵀ ⊗ Bᵀ` is 36 × 36, `G ⊗ G` 36 × 9, `Aᵀ ⊗ Aᵀ` 16 × 36) applied as one
//! matrix product each. Autograd's backward of these linear maps is again a Winograd
//! convolution (for the input's gradient) and Winograd-domain products (for the filter's), so
//! the backward pass saves the same multiplications.
//!
//! Relative to libtorch's direct convolution the outputs and gradients differ by float rounding
//! (about 1e-5 of their largest magnitude in f32; `tests/winograd.rs`).

use tch::{Kind, Tensor};

/// `Bᵀ` of F(4×4, 3×3): the input transform (rows: the 6 transformed elements).
const BT: [[f64; 6]; 6] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];

/// `G` of F(4×4, 3×3): the filter transform.
const G: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// `Aᵀ` of F(4×4, 3×3): the output transform.
const AT: [[f64; 6]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

/// Output tile side.
const M: i64 = 4;
/// Input tile side: `M + 3 - 1`.
const T: i64 = 6;

/// `a ⊗ a` (rows `(i, k)`, columns `(j, l)`, entry `a[i][j] · a[k][l]`) as an f32 tensor: the
/// matrix that applies `X ↦ a X aᵀ` to a row-major flattened `X`.
fn kron_square<const R: usize, const C: usize>(a: &[[f64; C]; R]) -> Tensor {
    let mut out = Vec::with_capacity(R * R * C * C);
    for ai in a {
        for ak in a {
            for &aij in ai {
                for &akl in ak {
                    out.push((aij * akl) as f32);
                }
            }
        }
    }
    Tensor::from_slice(&out).view([(R * R) as i64, (C * C) as i64])
}

/// The 3 × 3, stride-1, zero-padding-1 cross-correlation of `x` with `w` (what
/// `x.conv2d(w, None, [1], [1], [1], 1)` computes), by F(4×4, 3×3). Any `H, W ≥ 1`: the last
/// tiles are padded with zeros and their extra outputs dropped. The output keeps the input's
/// layout: channels-last strides when `x` has them, contiguous NCHW otherwise.
///
/// # Shapes
/// `x`: `[N, C_in, H, W]` f32, `w`: `[C_out, C_in, 3, 3]` f32, same device → `[N, C_out, H, W]`.
///
/// # Panics
/// When the shapes or kinds differ from the above (the message names both shapes).
pub fn winograd_conv3x3(x: &Tensor, w: &Tensor) -> Tensor {
    let (xs, ws) = (x.size(), w.size());
    assert!(
        xs.len() == 4 && ws.len() == 4 && ws[1] == xs[1] && ws[2..] == [3, 3],
        "winograd_conv3x3: input {xs:?} and weight {ws:?}: want [N, C, H, W] and [C_out, C, 3, 3]"
    );
    assert!(
        x.kind() == Kind::Float && w.kind() == Kind::Float,
        "winograd_conv3x3: input {:?} and weight {:?} must be f32",
        x.kind(),
        w.kind()
    );
    let (n, c, h, wd, co) = (xs[0], xs[1], xs[2], xs[3], ws[0]);
    let (th, tw) = ((h + M - 1) / M, (wd + M - 1) / M); // tiles per column and row
    let device = x.device();
    let (kb, kg, ka) = (
        kron_square(&BT).to_device(device),
        kron_square(&G).to_device(device),
        kron_square(&AT).to_device(device),
    );
    // Zero padding 1 on the top and left, and enough on the bottom and right for whole tiles:
    // [N, M·th + 2, M·tw + 2, C].
    let padded =
        x.permute([0, 2, 3, 1]).constant_pad_nd([0, 0, 1, M * tw - wd + 1, 1, M * th - h + 1]);
    let tiles = padded.unfold(1, T, M).unfold(2, T, M); // [N, th, tw, C, 6, 6] (overlapping view)
    let d = tiles.permute([4, 5, 0, 1, 2, 3]).reshape([T * T, -1]); // [36, N·th·tw·C]
    let v = kb.matmul(&d).view([T * T, n * th * tw, c]); // Bᵀ d B: [36, tiles, C]
    let g = w.permute([2, 3, 1, 0]).reshape([9, c * co]); // [9, C·C_out]
    let u = kg.matmul(&g).view([T * T, c, co]); // G g Gᵀ: [36, C, C_out]
    let prod = v.bmm(&u); // Σ_c over each of the 36 elements: [36, tiles, C_out]
    let y = ka.matmul(&prod.view([T * T, -1])).view([M, M, n, th, tw, co]); // Aᵀ · A

    // One copy into the input's layout (`reshape` alone may return a strided view when there is
    // one tile per row or column), dropping the padded tiles' extra rows and columns.
    if c > 1 && x.stride()[1] == 1 {
        // Channels-last in, channels-last out: [N, th, 4, tw, 4, C_out] is NHWC memory.
        let nhwc = y.permute([2, 3, 0, 4, 1, 5]).reshape([n, M * th, M * tw, co]);
        let nhwc = nhwc.narrow(1, 0, h).narrow(2, 0, wd).contiguous(); // [N, H, W, C_out]
        nhwc.permute([0, 3, 1, 2]) // [N, C_out, H, W], NHWC strides
    } else {
        let nchw = y.permute([2, 5, 3, 0, 4, 1]).reshape([n, co, M * th, M * tw]);
        nchw.narrow(2, 0, h).narrow(3, 0, wd).contiguous() // [N, C_out, H, W]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transforms_reproduce_a_one_dimensional_correlation() {
        // F(4, 3) in one dimension: y = Aᵀ[(G g) ⊙ (Bᵀ d)], y_i = Σ_k d_{i+k} g_k.
        let d = [0.5, -1.0, 2.0, 3.0, -0.25, 1.5];
        let g = [0.3, -0.7, 1.1];
        let gg: Vec<f64> = G.iter().map(|r| r.iter().zip(&g).map(|(a, b)| a * b).sum()).collect();
        let bd: Vec<f64> = BT.iter().map(|r| r.iter().zip(&d).map(|(a, b)| a * b).sum()).collect();
        for (i, row) in AT.iter().enumerate() {
            let y: f64 = row.iter().enumerate().map(|(j, a)| a * gg[j] * bd[j]).sum();
            let want: f64 = (0..3).map(|k| d[i + k] * g[k]).sum();
            assert!((y - want).abs() < 1e-12, "output {i}: {y} against {want}");
        }
    }
}
