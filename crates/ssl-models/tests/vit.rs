//! ViT: timm's parameter counts and names, MoCo v3's sin-cos table in closed form, one block
//! against the formula written out by hand, and the pooling and freezing options.

use std::collections::HashMap;

use ssl_models::{sincos_pos_embed, Pool, PosEmbed, Vit, VitConfig};
use ssl_testutil::seed_global_rng;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

fn build(cfg: &VitConfig) -> (VarStore, Vit) {
    let vs = VarStore::new(Device::Cpu);
    let vit = Vit::new(&vs.root(), cfg).unwrap();
    (vs, vit)
}

fn parameters(cfg: &VitConfig) -> i64 {
    let _rng = seed_global_rng(0);
    let (vs, _) = build(cfg);
    vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
}

#[test]
fn tiny_small_and_base_have_timms_parameter_counts_without_the_head() {
    // timm's vit_{tiny,small,base}_patch16_224 totals minus the 1000-class head (D·1000 + 1000);
    // written out per layer for Tiny: patch 192·3·16·16 + 192, class token 192, positions
    // 197·192, 12 × (2 LayerNorms 2·384, qkv 192·576 + 576, proj 192·192 + 192, fc1 192·768
    // + 768, fc2 768·192 + 192), final LayerNorm 384.
    let tiny = 147_648 + 192 + 37_824 + 12 * (768 + 111_168 + 37_056 + 148_224 + 147_648) + 384;
    assert_eq!(tiny, 5_717_416 - 193_000);
    assert_eq!(parameters(&VitConfig::tiny(224, 16)), tiny);
    assert_eq!(parameters(&VitConfig::small(224, 16)), 22_050_664 - 385_000);
    assert_eq!(parameters(&VitConfig::base(224, 16)), 86_567_656 - 769_000);
}

#[test]
fn names_are_timms() {
    let _rng = seed_global_rng(0);
    let (vs, _) = build(&VitConfig { depth: 2, ..VitConfig::tiny(32, 4) });
    let vars = vs.variables();
    // 4 + 12 per block + 2, as timm's state_dict without `head.*`.
    assert_eq!(vars.len(), 4 + 2 * 12 + 2);
    for name in [
        "patch_embed.proj.weight",
        "patch_embed.proj.bias",
        "cls_token",
        "pos_embed",
        "blocks.1.norm1.weight",
        "blocks.1.attn.qkv.weight",
        "blocks.1.attn.proj.bias",
        "blocks.0.norm2.bias",
        "blocks.0.mlp.fc1.weight",
        "blocks.0.mlp.fc2.bias",
        "norm.weight",
    ] {
        assert!(vars.contains_key(name), "missing {name}");
    }
    assert_eq!(vars["pos_embed"].size(), [1, 1 + 8 * 8, 192]);
}

#[test]
fn the_sincos_table_is_moco_v3s_closed_form() {
    // D 8: ω = [1, 10000^(-1/2)] = [1, 0.01]; a 3 × 3 grid, row-major patches after the class
    // token. The patch at row 1, column 2 is token 1 + 3·1 + 2 = 6.
    let t = sincos_pos_embed(3, 8);
    assert_eq!(t.size(), [1, 10, 8]);
    let row = |i: i64| Vec::<f32>::try_from(t.get(0).get(i)).unwrap();
    assert_eq!(row(0), vec![0.0; 8]);
    assert_eq!(row(1), vec![0., 0., 1., 1., 0., 0., 1., 1.]);
    let (w, h) = (2.0f64, 1.0f64);
    let want = [
        w.sin(),
        (w * 0.01).sin(),
        w.cos(),
        (w * 0.01).cos(),
        h.sin(),
        (h * 0.01).sin(),
        h.cos(),
        (h * 0.01).cos(),
    ];
    for (got, want) in row(6).iter().zip(want) {
        assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }
}

fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let mean = x.mean_dim(-1, true, Kind::Double);
    let var = (x - &mean).square().mean_dim(-1, true, Kind::Double);
    (x - mean) / (var + 1e-6).sqrt() * w + b
}

#[test]
fn one_block_is_the_pre_norm_formula_written_out() {
    let _rng = seed_global_rng(5);
    let cfg = VitConfig { depth: 1, in_channels: 1, ..VitConfig::tiny(8, 4) };
    let (vs, vit) = build(&cfg);
    let v: HashMap<String, Tensor> = vs.variables();
    // Move LayerNorm and bias parameters off their 1 / 0 starts, so each one is exercised.
    tch::no_grad(|| {
        for (name, t) in &v {
            if name.ends_with("bias") || name.contains("norm") {
                let _ = t.shallow_clone().g_add_(&(Tensor::randn_like(t) * 0.1));
            }
        }
    });
    let x = Tensor::rand([2, 1, 8, 8], (Kind::Float, Device::Cpu));
    let got = tch::no_grad(|| vit.tokens(&x)).to_kind(Kind::Double); // [2, 5, 192]

    let p = |n: &str| v[n].to_kind(Kind::Double);
    let lin =
        |x: &Tensor, n: &str| x.matmul(&p(&format!("{n}.weight")).tr()) + p(&format!("{n}.bias"));
    // Patches by hand: the 4 × 4 patch (r, c) flattened, times the projection.
    let xd = x.to_kind(Kind::Double);
    let proj = p("patch_embed.proj.weight").view([192, 16]);
    let mut tokens = vec![p("cls_token").view([1, 1, 192]).expand([2, 1, 192], false)];
    for r in 0..2 {
        for c in 0..2 {
            let patch = xd.narrow(2, 4 * r, 4).narrow(3, 4 * c, 4).reshape([2, 16]);
            tokens.push((patch.matmul(&proj.tr()) + p("patch_embed.proj.bias")).unsqueeze(1));
        }
    }
    let z0 = Tensor::cat(&tokens, 1) + p("pos_embed"); // [2, 5, 192]
    let a = layer_norm(&z0, &p("blocks.0.norm1.weight"), &p("blocks.0.norm1.bias"));
    let qkv = lin(&a, "blocks.0.attn.qkv"); // [2, 5, 576]
    let heads: Vec<Tensor> = (0..3)
        .map(|h| {
            let q = qkv.narrow(2, 64 * h, 64);
            let k = qkv.narrow(2, 192 + 64 * h, 64);
            let v = qkv.narrow(2, 384 + 64 * h, 64);
            (q.matmul(&k.transpose(1, 2)) / 8.0).softmax(-1, Kind::Double).matmul(&v)
        })
        .collect();
    let z1 = &z0 + lin(&Tensor::cat(&heads, 2), "blocks.0.attn.proj");
    let m = layer_norm(&z1, &p("blocks.0.norm2.weight"), &p("blocks.0.norm2.bias"));
    let hidden = lin(&m, "blocks.0.mlp.fc1");
    let gelu = &hidden * 0.5 * (1.0 + (&hidden / 2f64.sqrt()).erf());
    let z2 = &z1 + lin(&gelu, "blocks.0.mlp.fc2");
    let want = layer_norm(&z2, &p("norm.weight"), &p("norm.bias"));
    let err = (&got - &want).abs().max().double_value(&[]);
    assert!(err < 1e-4, "max error {err}");
}

#[test]
fn pooling_takes_the_class_token_or_the_patch_mean_and_the_map_holds_the_patches() {
    let _rng = seed_global_rng(6);
    let cfg = VitConfig { depth: 2, in_channels: 1, ..VitConfig::tiny(12, 4) };
    let (_vs, cls) = build(&cfg);
    let x = Tensor::rand([3, 1, 12, 12], (Kind::Float, Device::Cpu));
    let tokens = cls.tokens(&x);
    // The class-token path skips the last block's other 9 queries: same values up to rounding.
    assert!(cls.forward_t(&x, false).allclose(&tokens.select(1, 0), 1e-5, 1e-6, false));
    let map = cls.feature_map(&x); // [3, 192, 3, 3]
    assert_eq!(map.size(), [3, 192, 3, 3]);
    // Patch (row 1, column 2) is token 1 + 3 + 2 = 6.
    assert!(map.select(3, 2).select(2, 1).equal(&tokens.select(1, 6)));
    let mean_cfg = VitConfig { pool: Pool::Mean, ..cfg };
    tch::manual_seed(6);
    let (_vs2, mean) = build(&mean_cfg);
    let want = mean.feature_map(&x).mean_dim([2i64, 3].as_slice(), false, Kind::Float);
    assert!(mean.forward_t(&x, false).allclose(&want, 1e-5, 1e-6, false));
}

/// Every trainable variable's gradient of `(f(x) · r).sum()`.
fn gradients(vs: &VarStore, f: impl Fn() -> Tensor, r: &Tensor) -> Vec<Tensor> {
    for v in vs.trainable_variables() {
        let mut g = v.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    (f() * r).sum(Kind::Float).backward();
    vs.trainable_variables().iter().map(|v| v.grad().copy()).collect()
}

#[test]
fn the_class_token_shortcut_has_the_full_networks_gradients() {
    let _rng = seed_global_rng(8);
    // Weights off timm's small init, so every token matters to the class token's output.
    let cfg = VitConfig { depth: 2, in_channels: 1, ..VitConfig::tiny(12, 4) };
    let (vs, vit) = build(&cfg);
    tch::no_grad(|| {
        for mut v in vs.trainable_variables() {
            v.copy_(&(Tensor::randn_like(&v) * 0.2));
        }
    });
    let x = Tensor::rand([3, 1, 12, 12], (Kind::Float, Device::Cpu));
    let r = Tensor::randn([3, 192], (Kind::Float, Device::Cpu));
    let short = gradients(&vs, || vit.forward_t(&x, true), &r);
    let full = gradients(&vs, || vit.tokens(&x).select(1, 0), &r);
    assert_eq!(short.len(), full.len());
    for (a, b) in short.iter().zip(&full) {
        let scale = b.abs().max().double_value(&[]);
        let err = (a - b).abs().max().double_value(&[]);
        assert!(scale > 0.0 && err <= 1e-4 * scale, "gradient off by {err} of {scale}");
    }
}

#[test]
fn sincos_positions_and_the_frozen_patch_projection_are_not_trained() {
    let _rng = seed_global_rng(0);
    let cfg = VitConfig {
        depth: 1,
        pos_embed: PosEmbed::SinCos,
        frozen_patch_embed: true,
        ..VitConfig::tiny(16, 4)
    };
    let (vs, _) = build(&cfg);
    let all: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
    let trained: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    // Not trained: the 17 × 192 table and the projection's 192·3·4·4 weights + 192 biases.
    assert_eq!(all - trained, 17 * 192 + 192 * 48 + 192);
    assert!(vs.variables()["pos_embed"].equal(&sincos_pos_embed(4, 192)));
}

#[test]
fn bad_configs_name_the_field() {
    let err = Vit::new(&VarStore::new(Device::Cpu).root(), &VitConfig::tiny(28, 5)).unwrap_err();
    assert!(err.to_string().contains("patch_size"), "{err}");
    let heads = VitConfig { num_heads: 5, ..VitConfig::tiny(28, 4) };
    let err = Vit::new(&VarStore::new(Device::Cpu).root(), &heads).unwrap_err();
    assert!(err.to_string().contains("num_heads"), "{err}");
}

#[test]
fn bf16_products_stay_within_bf16_rounding_of_f32_and_train_f32_weights() {
    let _rng = seed_global_rng(0);
    let cfg = VitConfig { depth: 2, in_channels: 1, ..VitConfig::tiny(8, 4) };
    let (vs, mut vit) = build(&cfg);
    let x = Tensor::randn([3, 1, 8, 8], (Kind::Float, Device::Cpu));
    let f32_out = vit.forward_t(&x, true);
    vit.set_precision(ssl_models::Precision::Bf16);
    let bf16_out = vit.forward_t(&x, true);
    assert_eq!(bf16_out.kind(), Kind::Float, "pooled features come back f32");
    // bf16 keeps 8 bits of mantissa (relative step 2⁻⁸ ≈ 0.4 %): two blocks of products stay
    // within a few steps of f32 on LayerNorm-scaled (unit) features, and are not equal to it.
    let diff = (&bf16_out - &f32_out).abs().max().double_value(&[]);
    assert!(diff < 0.05 && diff > 0.0, "bf16 vs f32: {diff}");
    bf16_out.sum(Kind::Float).backward();
    for (name, var) in vs.trainable_variables().iter().enumerate() {
        let g = var.grad();
        assert!(g.defined() && g.kind() == Kind::Float, "variable {name}: f32 gradient");
    }
}

#[test]
#[should_panic(expected = "expected [N, 1, 8, 8] (a ViT sees one image size)")]
fn an_input_of_another_size_panics_naming_both_shapes() {
    let (_vs, vit) = build(&VitConfig { depth: 1, in_channels: 1, ..VitConfig::tiny(8, 4) });
    let _ = vit.forward_t(&Tensor::zeros([2, 1, 12, 12], (Kind::Float, Device::Cpu)), false);
}
