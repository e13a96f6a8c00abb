//! The YAML form of `model.backbone`: a ResNet's keys as they always were (an optional
//! `name: resnet`), or `name: vit_tiny | vit_small | vit_base | vit` with a ViT's keys.
//!
//! ```yaml
//! backbone: {name: vit_tiny, image_size: 28, patch_size: 4, in_channels: 1}
//! ```
//!
//! The sizes of `vit_tiny`, `vit_small` and `vit_base` are DeiT's / timm's (D 192 / 384 / 768,
//! 3 / 6 / 12 heads, 12 blocks, MLP ratio 4); `embed_dim`, `depth`, `num_heads` and `mlp_ratio`
//! override them, and `name: vit` needs all four. A run's `config.yaml` writes a preset's name
//! when the sizes are the preset's, `vit` with the four sizes otherwise, so it reads back to
//! the same network.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use ssl_models::{BackboneConfig, Pool, PosEmbed, Precision, ResNetConfig, VitConfig};

/// The ViT presets by name, built from (image size, patch size) by ssl-models.
type Preset = fn(i64, i64) -> VitConfig;
const PRESETS: [(&str, Preset); 3] =
    [("vit_tiny", VitConfig::tiny), ("vit_small", VitConfig::small), ("vit_base", VitConfig::base)];

/// A ViT's four sizes: D, heads, blocks, MLP ratio.
fn sizes(c: &VitConfig) -> (i64, i64, i64, i64) {
    (c.embed_dim, c.num_heads, c.depth, c.mlp_ratio)
}

/// `model.backbone` when it names a ViT.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VitYaml {
    name: String,
    image_size: i64,
    patch_size: i64,
    in_channels: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    embed_dim: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    depth: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_heads: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mlp_ratio: Option<i64>,
    #[serde(default = "learned")]
    pos_embed: PosEmbed,
    #[serde(default = "cls")]
    pool: Pool,
    #[serde(default)]
    frozen_patch_embed: bool,
    #[serde(default)]
    precision: Precision,
}

fn learned() -> PosEmbed {
    PosEmbed::Learned
}

fn cls() -> Pool {
    Pool::Cls
}

impl VitYaml {
    fn into_config(self) -> Result<VitConfig, String> {
        let preset = PRESETS.iter().find(|(n, _)| *n == self.name);
        let (embed_dim, num_heads, depth, mlp_ratio) = match (preset, self.name.as_str()) {
            (Some((_, build)), _) => {
                let (d, h, blocks, ratio) = sizes(&build(self.image_size, self.patch_size));
                (
                    self.embed_dim.unwrap_or(d),
                    self.num_heads.unwrap_or(h),
                    self.depth.unwrap_or(blocks),
                    self.mlp_ratio.unwrap_or(ratio),
                )
            }
            (None, "vit") => {
                let need = |v: Option<i64>, key: &str| {
                    v.ok_or_else(|| format!("`{key}` is required when `name` is `vit`"))
                };
                (
                    need(self.embed_dim, "embed_dim")?,
                    need(self.num_heads, "num_heads")?,
                    need(self.depth, "depth")?,
                    need(self.mlp_ratio, "mlp_ratio")?,
                )
            }
            (None, other) => {
                return Err(format!(
                    "`name`: unknown backbone `{other}`; expected resnet, vit_tiny, vit_small, \
                     vit_base or vit"
                ))
            }
        };
        Ok(VitConfig {
            image_size: self.image_size,
            patch_size: self.patch_size,
            in_channels: self.in_channels,
            embed_dim,
            depth,
            num_heads,
            mlp_ratio,
            pos_embed: self.pos_embed,
            pool: self.pool,
            frozen_patch_embed: self.frozen_patch_embed,
            precision: self.precision,
        })
    }

    fn from_config(c: &VitConfig) -> Self {
        let preset =
            PRESETS.iter().find(|(_, build)| sizes(&build(c.image_size, c.patch_size)) == sizes(c));
        let explicit = |v| if preset.is_some() { None } else { Some(v) };
        Self {
            name: preset.map_or("vit", |p| p.0).to_string(),
            image_size: c.image_size,
            patch_size: c.patch_size,
            in_channels: c.in_channels,
            embed_dim: explicit(c.embed_dim),
            depth: explicit(c.depth),
            num_heads: explicit(c.num_heads),
            mlp_ratio: explicit(c.mlp_ratio),
            pos_embed: c.pos_embed,
            pool: c.pool,
            frozen_patch_embed: c.frozen_patch_embed,
            precision: c.precision,
        }
    }
}

/// Reads either form; errors name the key inside `model.backbone`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BackboneConfig, D::Error> {
    let mut value = Value::deserialize(d)?;
    let located = |e: serde_path_to_error::Error<serde_json::Error>| {
        D::Error::custom(format!("`{}`: {}", e.path(), e.inner()))
    };
    let resnet = match value.get("name") {
        None => true,
        Some(name) => name == "resnet",
    };
    if resnet {
        if let Some(map) = value.as_object_mut() {
            map.remove("name");
        }
        let c: ResNetConfig = serde_path_to_error::deserialize(value).map_err(located)?;
        return Ok(BackboneConfig::ResNet(c));
    }
    let y: VitYaml = serde_path_to_error::deserialize(value).map_err(located)?;
    Ok(BackboneConfig::Vit(y.into_config().map_err(D::Error::custom)?))
}

/// Writes a ResNet's keys as they always were, a ViT with its `name`.
pub(crate) fn serialize<S: Serializer>(c: &BackboneConfig, s: S) -> Result<S::Ok, S::Error> {
    match c {
        BackboneConfig::ResNet(r) => r.serialize(s),
        BackboneConfig::Vit(v) => VitYaml::from_config(v).serialize(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Wrap(#[serde(with = "super")] BackboneConfig);

    fn parse(json: &str) -> Result<BackboneConfig, String> {
        serde_json::from_str::<Wrap>(json).map(|w| w.0).map_err(|e| e.to_string())
    }

    #[test]
    fn presets_take_the_sizes_of_deit_and_overrides_win() {
        let c =
            parse(r#"{"name": "vit_small", "image_size": 28, "patch_size": 4, "in_channels": 1}"#)
                .unwrap();
        assert_eq!(
            c,
            BackboneConfig::Vit(VitConfig {
                in_channels: 1,
                precision: Precision::Auto,
                ..VitConfig::small(28, 4)
            })
        );
        let c = parse(
            r#"{"name": "vit_tiny", "image_size": 32, "patch_size": 4, "in_channels": 3, "depth": 6}"#,
        )
        .unwrap();
        let BackboneConfig::Vit(v) = c else { panic!("a ViT") };
        assert_eq!((v.embed_dim, v.num_heads, v.depth, v.mlp_ratio), (192, 3, 6, 4));
    }

    #[test]
    fn a_run_config_reads_back_to_the_same_network() {
        let tiny = VitConfig { in_channels: 1, ..VitConfig::tiny(28, 4) };
        let custom = VitConfig { depth: 6, pos_embed: PosEmbed::SinCos, ..tiny.clone() };
        for c in [
            BackboneConfig::Vit(tiny),
            BackboneConfig::Vit(custom),
            BackboneConfig::ResNet(ResNetConfig::cifar_resnet18()),
        ] {
            let text = serde_json::to_string(&Wrap(c.clone())).unwrap();
            assert_eq!(parse(&text).unwrap(), c, "{text}");
        }
        let text =
            serde_json::to_string(&Wrap(BackboneConfig::Vit(VitConfig::tiny(28, 4)))).unwrap();
        assert!(text.contains(r#""name":"vit_tiny""#) && !text.contains("depth"), "{text}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse(r#"{"name": "vit", "image_size": 28, "patch_size": 4, "in_channels": 1}"#)
            .unwrap_err();
        assert!(e.contains("`embed_dim` is required"), "{e}");
        let e =
            parse(r#"{"name": "vit_huge", "image_size": 28, "patch_size": 4, "in_channels": 1}"#)
                .unwrap_err();
        assert!(e.contains("unknown backbone `vit_huge`"), "{e}");
        let e = parse(
            r#"{"name": "vit_tiny", "image_size": "big", "patch_size": 4, "in_channels": 1}"#,
        )
        .unwrap_err();
        assert!(e.contains("`image_size`"), "{e}");
        let e = parse(r#"{"name": "resnet", "block": "basic", "layers": [1], "width": 8, "in_channels": 1, "stem": "cifar", "blocks": 2}"#)
            .unwrap_err();
        assert!(e.contains("blocks"), "{e}");
    }
}
