//! Vision Transformer backbone with timm's variable names.

use tch::nn::{self, Init, Module, ModuleT};
use tch::{Kind, Tensor};

use crate::init::cast;
use crate::{CpuFeatures, ModelError, Precision, PrecisionChoice, Result};

/// How the patch tokens learn where they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum PosEmbed {
    /// A learnt `[1, 1 + L, D]` table (ViT, DeiT, timm).
    Learned,
    /// Fixed 2-D sin-cos embeddings, zero for the class token (MoCo v3).
    SinCos,
}

/// What [`Vit`]'s `forward_t` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Pool {
    /// The class token after the final LayerNorm.
    Cls,
    /// The mean of the patch tokens after the final LayerNorm: timm's `global_pool='avg'` with
    /// `fc_norm=False` (checked by `tests/interop.rs`). timm's default for `avg` normalises
    /// after the mean instead (`fc_norm`), so those weights have no `norm.*` and do not load
    /// here: an error naming the missing variable, not a silent mismatch.
    Mean,
}

/// Settings of [`Vit`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct VitConfig {
    /// Input height and width in pixels; a multiple of `patch_size`.
    pub image_size: i64,
    /// Side of the square patches (16 in the paper; 4 suits 28–32 px images).
    pub patch_size: i64,
    /// Input channels.
    pub in_channels: i64,
    /// Token width D.
    pub embed_dim: i64,
    /// Transformer blocks.
    pub depth: i64,
    /// Attention heads; D must be a multiple.
    pub num_heads: i64,
    /// Hidden width of each block's MLP as a multiple of D.
    pub mlp_ratio: i64,
    /// Position embeddings.
    pub pos_embed: PosEmbed,
    /// The pooled feature.
    pub pool: Pool,
    /// Keep the patch projection at its random initialisation (MoCo v3's stability trick).
    #[cfg_attr(feature = "serde", serde(default))]
    pub frozen_patch_embed: bool,
    /// The number format of the matrix products (as `torch.autocast` runs a ViT: linear
    /// layers, the patch projection and attention in bf16, LayerNorm and the residual stream
    /// in f32); `auto` when absent from a config (see [`Precision::resolve`]).
    #[cfg_attr(feature = "serde", serde(default))]
    pub precision: Precision,
}

impl VitConfig {
    /// ViT-Tiny (DeiT-Ti; timm `vit_tiny_patch16_224`): D 192, 12 blocks, 3 heads.
    pub fn tiny(image_size: i64, patch_size: i64) -> Self {
        Self::sized(image_size, patch_size, 192, 3)
    }

    /// ViT-Small (DeiT-S; timm `vit_small_patch16_224`): D 384, 12 blocks, 6 heads.
    pub fn small(image_size: i64, patch_size: i64) -> Self {
        Self::sized(image_size, patch_size, 384, 6)
    }

    /// ViT-Base (timm `vit_base_patch16_224`): D 768, 12 blocks, 12 heads.
    pub fn base(image_size: i64, patch_size: i64) -> Self {
        Self::sized(image_size, patch_size, 768, 12)
    }

    fn sized(image_size: i64, patch_size: i64, embed_dim: i64, num_heads: i64) -> Self {
        Self {
            image_size,
            patch_size,
            in_channels: 3,
            embed_dim,
            depth: 12,
            num_heads,
            mlp_ratio: 4,
            pos_embed: PosEmbed::Learned,
            pool: Pool::Cls,
            frozen_patch_embed: false,
            precision: Precision::F32,
        }
    }

    /// Patches per side.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size
    }

    /// Checks every field; errors name it.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: String, reason| {
            Err(ModelError::InvalidConfig { model: "vit", field, value, reason })
        };
        if self.patch_size < 1 || self.image_size < 1 || self.image_size % self.patch_size != 0 {
            let v = format!("{} (image_size {})", self.patch_size, self.image_size);
            return bad("patch_size", v, "must be ≥ 1 and divide image_size");
        }
        if self.num_heads < 1 || self.embed_dim % self.num_heads != 0 {
            let v = format!("{} (embed_dim {})", self.num_heads, self.embed_dim);
            return bad("num_heads", v, "must be ≥ 1 and divide embed_dim");
        }
        if self.pos_embed == PosEmbed::SinCos && self.embed_dim % 4 != 0 {
            return bad("embed_dim", self.embed_dim.to_string(), "sin-cos needs a multiple of 4");
        }
        for (field, v) in [
            ("in_channels", self.in_channels),
            ("depth", self.depth),
            ("mlp_ratio", self.mlp_ratio),
        ] {
            if v < 1 {
                return bad(field, v.to_string(), "must be ≥ 1");
            }
        }
        Ok(())
    }
}

/// MoCo v3's fixed 2-D sin-cos position embeddings `[1, 1 + g², D]` for a `g × g` grid: for
/// the patch at row h, column w, with ω_k = 1 / 10000^(k / (D/4)), k < D/4,
/// `[sin(w ω), cos(w ω), sin(h ω), cos(h ω)]`; zeros for the class token.
pub fn sincos_pos_embed(grid: i64, dim: i64) -> Tensor {
    let f64_cpu = (Kind::Double, tch::Device::Cpu);
    let quarter = dim / 4;
    let omega =
        (Tensor::arange(quarter, f64_cpu) / quarter as f64).multiply_scalar(-(10000f64.ln())).exp(); // [D/4]
    let coords = Tensor::arange(grid, f64_cpu);
    let out_w = coords.repeat([grid]).outer(&omega); // the column of each patch, row-major
    let out_h = coords.repeat_interleave_self_int(grid, 0, None).outer(&omega); // its row
    let patches = Tensor::cat(&[out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], 1);
    let cls = Tensor::zeros([1, dim], f64_cpu);
    Tensor::cat(&[cls, patches], 0).to_kind(Kind::Float).unsqueeze(0)
}

/// A variable of `p` holding `value`, outside the trainable set (tch's `var_copy` is trained).
fn untrained(p: &nn::Path, name: &str, value: &Tensor) -> Tensor {
    let var = p.zeros_no_train(name, &value.size());
    tch::no_grad(|| var.shallow_clone().copy_(value));
    var
}

/// The patch embedding E: a `patch_size`-strided convolution, PyTorch's `Conv2d` init
/// (kaiming-uniform weights, U(±1/√fan_in) biases); outside the trainable set when frozen.
#[derive(Debug)]
struct PatchProjection {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
}

impl PatchProjection {
    fn new(p: &nn::Path, cfg: &VitConfig) -> Self {
        let (d, k) = (cfg.embed_dim, cfg.patch_size);
        let dims = [d, cfg.in_channels, k, k];
        let bound = 1.0 / ((cfg.in_channels * k * k) as f64).sqrt();
        let (w_init, b_init) =
            (nn::init::DEFAULT_KAIMING_UNIFORM, Init::Uniform { lo: -bound, up: bound });
        let (weight, bias) = if cfg.frozen_patch_embed {
            let draw = |init, dims: &[i64]| nn::init::init(init, dims, p.device());
            (
                untrained(p, "weight", &draw(w_init, &dims)),
                untrained(p, "bias", &draw(b_init, &[d])),
            )
        } else {
            (p.var("weight", &dims, w_init), p.var("bias", &[d], b_init))
        };
        Self { weight, bias, stride: k }
    }

    /// `[N, C, H, W]` → `[N, D, H / p, W / p]`, computed in `kind` and returned in f32.
    fn forward(&self, x: &Tensor, kind: Kind) -> Tensor {
        let (w, b) = (cast(&self.weight, kind), cast(&self.bias, kind));
        cast(x, kind).conv2d(&w, Some(&b), [self.stride], [0], [1], 1).to_kind(Kind::Float)
    }
}

/// `x W^T + b` computed in `kind` (the weights stay f32, as `torch.autocast` casts them).
fn linear_in(l: &nn::Linear, x: &Tensor, kind: Kind) -> Tensor {
    let b = l.bs.as_ref().map(|b| cast(b, kind));
    cast(x, kind).linear(&cast(&l.ws, kind), b.as_ref())
}

/// One pre-norm block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`; timm's names.
#[derive(Debug)]
struct Block {
    norm1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    heads: i64,
}

/// timm's LayerNorm (ε 1e-6).
fn layer_norm(p: nn::Path, d: i64) -> nn::LayerNorm {
    nn::layer_norm(p, vec![d], nn::LayerNormConfig { eps: 1e-6, ..Default::default() })
}

/// A linear layer with timm's ViT initialisation: weights N(0, 0.02²), biases 0.
fn linear(p: nn::Path, i: i64, o: i64) -> nn::Linear {
    let ws_init = Init::Randn { mean: 0.0, stdev: 0.02 };
    nn::linear(p, i, o, nn::LinearConfig { ws_init, bs_init: Some(Init::Const(0.0)), bias: true })
}

impl Block {
    fn new(p: &nn::Path, d: i64, heads: i64, mlp_ratio: i64) -> Self {
        let (attn, mlp) = (p / "attn", p / "mlp");
        Self {
            norm1: layer_norm(p / "norm1", d),
            qkv: linear(&attn / "qkv", d, 3 * d),
            proj: linear(&attn / "proj", d, d),
            norm2: layer_norm(p / "norm2", d),
            fc1: linear(&mlp / "fc1", d, mlp_ratio * d),
            fc2: linear(&mlp / "fc2", mlp_ratio * d, d),
            heads,
        }
    }

    /// `x`: `[N, T, D]` f32 → `[N, T, D]` f32; the products in `kind`.
    fn forward(&self, x: &Tensor, kind: Kind) -> Tensor {
        let (n, t, d) = x.size3().expect("[N, T, D] tokens");
        let qkv = linear_in(&self.qkv, &self.norm1.forward(x), kind); // [N, T, 3D]
        let qkv = qkv.view([n, t, 3, self.heads, d / self.heads]).permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2)); // [N, H, T, D/H]
        self.finish(x, &attention(&q, &k, &v), kind)
    }

    /// The block's output for the first token (the class token) alone: `[N, T, D]` →
    /// `[N, 1, D]`, equal to `forward(x).narrow(1, 0, 1)`. Keys and values still come from every
    /// token, but the query, the projection and the MLP run on one token of T, as LayerNorm and
    /// the MLP act on each token separately and attention's row for a query reads only that
    /// query.
    fn forward_first(&self, x: &Tensor, kind: Kind) -> Tensor {
        let (n, t, d) = x.size3().expect("[N, T, D] tokens");
        let (dh, h) = (d / self.heads, self.norm1.forward(x));
        let (w, b) = (&self.qkv.ws, self.qkv.bs.as_ref().expect("qkv has a bias"));
        let q_lin = nn::Linear { ws: w.narrow(0, 0, d), bs: Some(b.narrow(0, 0, d)) };
        let kv_lin = nn::Linear { ws: w.narrow(0, d, 2 * d), bs: Some(b.narrow(0, d, 2 * d)) };
        let q = linear_in(&q_lin, &h.narrow(1, 0, 1), kind); // [N, 1, D]
        let q = q.view([n, 1, self.heads, dh]).transpose(1, 2); // [N, H, 1, D/H]
        let kv = linear_in(&kv_lin, &h, kind); // [N, T, 2D]
        let kv = kv.view([n, t, 2, self.heads, dh]).permute([2, 0, 3, 1, 4]);
        let (k, v) = (kv.get(0), kv.get(1)); // [N, H, T, D/H]
        self.finish(&x.narrow(1, 0, 1), &attention(&q, &k, &v), kind)
    }

    /// `x + proj(a)`, then `x + mlp(norm2(x))`: `x` `[N, T', D]`, `a` `[N, H, T', D/H]`.
    fn finish(&self, x: &Tensor, a: &Tensor, kind: Kind) -> Tensor {
        let (n, t, d) = x.size3().expect("[N, T, D] tokens");
        let x = x + linear_in(&self.proj, &a.transpose(1, 2).reshape([n, t, d]), kind);
        let h = linear_in(&self.fc1, &self.norm2.forward(&x), kind).gelu("none");
        x + linear_in(&self.fc2, &h, kind)
    }
}

/// softmax(q kᵀ / √d) v per head, libtorch's fused kernel: `[N, H, T_q, d]` queries against
/// `[N, H, T, d]` keys and values.
fn attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    Tensor::scaled_dot_product_attention(q, k, v, None::<Tensor>, 0.0, false, None, false)
}

/// A Vision Transformer returning pooled features (no classifier).
///
/// Paper: Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021,
/// <https://arxiv.org/abs/2010.11929>, Eq. (1)–(4); Tiny and Small from Touvron et al.,
/// "Training data-efficient image transformers" (DeiT), ICML 2021; sin-cos positions and the
/// frozen patch projection from Chen, Xie, He, "An Empirical Study of Training Self-Supervised
/// Vision Transformers" (MoCo v3), ICCV 2021.
///
/// ```text
/// z₀ = [x_cls; E x_p¹; …; E x_pᴸ] + E_pos          E: patch_size² · C → D (a strided conv)
/// z'ₗ = zₗ₋₁ + MSA(LN(zₗ₋₁)),  zₗ = z'ₗ + MLP(LN(z'ₗ))      l = 1 … depth (pre-norm)
/// y = LN(z_depth)[0] (Pool::Cls) or mean of LN(z_depth)[1..] (Pool::Mean)
/// ```
///
/// With `Pool::Cls` the last block runs its query, projection and MLP on the class token
/// alone (keys and values still from every token): the same output, 7 % fewer products for
/// ViT-Tiny (depth 12).
///
/// Attention is libtorch's fused `scaled_dot_product_attention`. Variable names are timm's
/// (`patch_embed.proj.weight`, `cls_token`, `pos_embed`, `blocks.0.attn.qkv.weight`, `norm.*`):
/// `state_dict`s of timm 1.0.31's `VisionTransformer` (class-token and, with `fc_norm=False`,
/// average pooling) load with `VarStore::load` and give timm's tokens and features to 1e-4
/// (`tests/interop.rs`, fixtures from `tests/fixtures/make_fixtures.py`). The matrix products
/// run in bf16 under [`Precision::Bf16`], LayerNorm and the residual stream in f32.
///
/// # Shapes
/// `x`: `[N, in_channels, image_size, image_size]` → `[N, embed_dim]`.
#[derive(Debug)]
pub struct Vit {
    patch: PatchProjection,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    norm: nn::LayerNorm,
    cfg: VitConfig,
    /// [`Precision::F32`] or [`Precision::Bf16`]: `Auto` is resolved when it is set.
    precision: Precision,
}

impl Vit {
    /// Creates the variables under `p` with timm's names.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] when `cfg` fails [`VitConfig::validate`].
    pub fn new(p: &nn::Path, cfg: &VitConfig) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.embed_dim;
        let patch = PatchProjection::new(&(p / "patch_embed" / "proj"), cfg);
        let tokens = 1 + cfg.grid() * cfg.grid();
        let cls_token = p.var("cls_token", &[1, 1, d], Init::Randn { mean: 0.0, stdev: 1e-6 });
        let pos_embed = match cfg.pos_embed {
            PosEmbed::Learned => {
                p.var("pos_embed", &[1, tokens, d], Init::Randn { mean: 0.0, stdev: 0.02 })
            }
            PosEmbed::SinCos => untrained(p, "pos_embed", &sincos_pos_embed(cfg.grid(), d)),
        };
        let blocks = (0..cfg.depth)
            .map(|i| Block::new(&(p / "blocks" / i), d, cfg.num_heads, cfg.mlp_ratio))
            .collect();
        let norm = layer_norm(p / "norm", d);
        let mut vit = Self {
            patch,
            cls_token,
            pos_embed,
            blocks,
            norm,
            cfg: cfg.clone(),
            precision: Precision::F32,
        };
        vit.set_precision(cfg.precision);
        Ok(vit)
    }

    /// Switches the number format of the matrix products (the weights stay f32), resolving
    /// [`Precision::Auto`] for this machine and the variables' device; returns the choice.
    pub fn set_precision(&mut self, precision: Precision) -> PrecisionChoice {
        let choice = precision.resolve(self.cls_token.device(), &CpuFeatures::detect());
        self.precision = choice.precision;
        choice
    }

    /// D, the width of the pooled features.
    pub fn feature_dim(&self) -> i64 {
        self.cfg.embed_dim
    }

    /// All tokens after the final LayerNorm: `[N, 1 + L, D]`, the class token first, the
    /// patches row by row.
    ///
    /// # Panics
    /// When `x` is not `[N, in_channels, image_size, image_size]`, naming both shapes.
    pub fn tokens(&self, x: &Tensor) -> Tensor {
        let kind = self.kind();
        let mut z = self.embed(x, kind);
        for block in &self.blocks {
            z = block.forward(&z, kind);
        }
        self.norm.forward(&z)
    }

    /// The class token after the final LayerNorm, `[N, D]`: `tokens(x)[:, 0]` with the last
    /// block's query, projection and MLP on the class token alone (keys and values from every
    /// token), so 1 of the 1 + L tokens pays for them — about 1/depth × (1 − 2/12) of the
    /// network's matrix products (7 % of ViT-Tiny's).
    fn class_token(&self, x: &Tensor) -> Tensor {
        let kind = self.kind();
        let mut z = self.embed(x, kind);
        let (last, rest) = self.blocks.split_last().expect("depth ≥ 1");
        for block in rest {
            z = block.forward(&z, kind);
        }
        self.norm.forward(&last.forward_first(&z, kind)).squeeze_dim(1)
    }

    /// The kind of the matrix products.
    fn kind(&self) -> Kind {
        match self.precision {
            Precision::Bf16 => Kind::BFloat16,
            _ => Kind::Float,
        }
    }

    /// `z₀`: the class token and the projected patches plus positions, `[N, 1 + L, D]` f32.
    ///
    /// # Panics
    /// When `x` is not `[N, in_channels, image_size, image_size]`, naming both shapes.
    fn embed(&self, x: &Tensor, kind: Kind) -> Tensor {
        let (c, s) = (self.cfg.in_channels, self.cfg.image_size);
        let size = x.size();
        assert!(
            size.len() == 4 && size[1..] == [c, s, s],
            "Vit: input {size:?}, expected [N, {c}, {s}, {s}] (a ViT sees one image size)"
        );
        let patches = self.patch.forward(x, kind).flatten(2, 3).transpose(1, 2); // [N, L, D]
        let cls = self.cls_token.expand([size[0], 1, self.cfg.embed_dim], false);
        Tensor::cat(&[cls, patches], 1) + &self.pos_embed
    }

    /// The patch tokens as a feature map `[N, D, g, g]` (for dense methods).
    pub fn feature_map(&self, x: &Tensor) -> Tensor {
        let t = self.tokens(x);
        let (n, g, d) = (t.size()[0], self.cfg.grid(), self.cfg.embed_dim);
        t.narrow(1, 1, g * g).transpose(1, 2).reshape([n, d, g, g])
    }
}

impl ModuleT for Vit {
    /// Pooled features `[N, D]`; no dropout, so `train` changes nothing.
    fn forward_t(&self, x: &Tensor, _train: bool) -> Tensor {
        match self.cfg.pool {
            Pool::Cls => self.class_token(x),
            Pool::Mean => {
                let t = self.tokens(x);
                t.narrow(1, 1, t.size()[1] - 1).mean_dim(1, false, Kind::Float)
            }
        }
    }
}
