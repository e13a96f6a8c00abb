//! The method registry: `method: {name: ..., ...}` in the YAML, one variant per shipped method.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use ssl_loss::{DclConfig, HardNegativeConfig, NtXentConfig};
use tch::nn::VarStore;

use crate::byol::{Byol, ByolConfig};
use crate::config::ProjectionConfig;
use crate::densecl::{DenseCl, DenseClConfig};
use crate::error::at_key;
use crate::method::Method;
use crate::moco::{Moco, MocoConfig};
use crate::mocov3::{MocoV3, MocoV3Config};
use crate::simsiam::{SimSiam, SimSiamConfig};
use crate::supcon::{SupConMethod, SupConMethodConfig};
use crate::supervised::{Supervised, SupervisedConfig};
use crate::swav::{Swav, SwavConfig};
use crate::{Config, Result, SimClr, TrainError};

/// SimCLR's settings (`method: {name: simclr, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimClrConfig {
    /// The projection head g: Linear − BatchNorm − ReLU − Linear (SimCLR, Sec. 2.1).
    pub projection: ProjectionConfig,
    /// NT-Xent's temperature (and whether it is learnt).
    pub loss: NtXentConfig,
}

/// SimCLR with HCL's hard-negative loss (`method: {name: simclr-hcl, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimClrHclConfig {
    /// SimCLR's projection head g.
    pub projection: ProjectionConfig,
    /// τ, β (the concentration on hard negatives) and τ⁺ (the debiasing prior) of Robinson et
    /// al. 2021; keys left out take the paper's CIFAR values (0.5, 1.0, 0.1).
    pub loss: HardNegativeConfig,
}

/// SimCLR with DCL's decoupled loss (`method: {name: simclr-dcl, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimClrDclConfig {
    /// SimCLR's projection head g.
    pub projection: ProjectionConfig,
    /// τ and DCL-W's σ (null: plain DCL) of Yeh et al. 2022; keys left out take τ 0.1 and
    /// plain DCL.
    pub loss: DclConfig,
}

/// Which method trains, with its own keys. In YAML a mapping whose `name` is the method
/// (`simclr`, `simclr-hcl`, `simclr-dcl`, `mocov1`, `mocov2`, `mocov3`, `byol`, `simsiam`,
/// `swav`, `densecl`, `supcon`, `supervised`) and whose other keys are that method's;
/// unknown keys are errors naming `method.<key>`.
///
/// The enum is the registry: an exhaustive `match` the compiler checks, so a new method is a
/// variant, a file and a YAML (see ARCHITECTURE.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum MethodConfig {
    /// SimCLR (Chen et al. 2020).
    Simclr(SimClrConfig),
    /// SimCLR with hard negatives (Robinson et al. 2021).
    #[serde(rename = "simclr-hcl")]
    SimclrHcl(SimClrHclConfig),
    /// SimCLR with the decoupled loss (Yeh et al. 2022).
    #[serde(rename = "simclr-dcl")]
    SimclrDcl(SimClrDclConfig),
    /// MoCo v1 (He et al. 2020): linear head, τ 0.07.
    Mocov1(MocoConfig),
    /// MoCo v2 (Chen et al. 2020): MLP head, τ 0.2, blur.
    Mocov2(MocoConfig),
    /// MoCo v3 (Chen, Xie, He 2021): momentum encoder, predictor, in-batch InfoNCE.
    Mocov3(MocoV3Config),
    /// BYOL (Grill et al. 2020).
    Byol(ByolConfig),
    /// SimSiam (Chen & He 2021).
    Simsiam(SimSiamConfig),
    /// SwAV (Caron et al. 2020): multi-crop, prototypes, Sinkhorn codes.
    Swav(Box<SwavConfig>),
    /// DenseCL (Wang et al. 2021): MoCo v2 plus a dense loss on matched locations.
    Densecl(DenseClConfig),
    /// SupCon (Khosla et al. 2020): uses the labels.
    Supcon(SupConMethodConfig),
    /// Cross-entropy on the labels: the supervised ceiling.
    Supervised(SupervisedConfig),
}

/// The names `method.name` accepts.
pub const METHOD_NAMES: [&str; 12] = [
    "simclr",
    "simclr-hcl",
    "simclr-dcl",
    "mocov1",
    "mocov2",
    "mocov3",
    "byol",
    "simsiam",
    "swav",
    "densecl",
    "supcon",
    "supervised",
];

impl MethodConfig {
    /// The method's name as the YAML writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Simclr(_) => "simclr",
            Self::SimclrHcl(_) => "simclr-hcl",
            Self::SimclrDcl(_) => "simclr-dcl",
            Self::Mocov1(_) => "mocov1",
            Self::Mocov2(_) => "mocov2",
            Self::Mocov3(_) => "mocov3",
            Self::Byol(_) => "byol",
            Self::Simsiam(_) => "simsiam",
            Self::Swav(_) => "swav",
            Self::Densecl(_) => "densecl",
            Self::Supcon(_) => "supcon",
            Self::Supervised(_) => "supervised",
        }
    }

    /// The method's name as its paper writes it.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Simclr(_) => "SimCLR",
            Self::SimclrHcl(_) => "SimCLR-HCL",
            Self::SimclrDcl(_) => "SimCLR-DCL",
            Self::Mocov1(_) => "MoCo v1",
            Self::Mocov2(_) => "MoCo v2",
            Self::Mocov3(_) => "MoCo v3",
            Self::Byol(_) => "BYOL",
            Self::Simsiam(_) => "SimSiam",
            Self::Swav(_) => "SwAV",
            Self::Densecl(_) => "DenseCL",
            Self::Supcon(_) => "SupCon",
            Self::Supervised(_) => "supervised",
        }
    }

    /// Checks the method's keys without allocating tensors.
    ///
    /// # Errors
    /// [`TrainError::Invalid`] naming `method.<key>`, or a leaf crate's config error.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Simclr(c) => {
                check_projection(&c.projection)?;
                if !c.loss.learnable_temperature {
                    c.loss.build().map_err(|e| at_key("method.loss", e))?;
                }
                Ok(())
            }
            Self::SimclrHcl(c) => {
                check_projection(&c.projection)?;
                c.loss.build().map_err(|e| at_key("method.loss", e))?;
                Ok(())
            }
            Self::SimclrDcl(c) => {
                check_projection(&c.projection)?;
                c.loss.build().map_err(|e| at_key("method.loss", e))?;
                Ok(())
            }
            // Their loss settings sit directly under `method` (`method.temperature`).
            Self::Mocov1(c) | Self::Mocov2(c) => c.validate().map_err(|e| at_key("method", e)),
            Self::Mocov3(c) => c.validate().map_err(|e| at_key("method", e)),
            Self::Byol(c) => c.validate().map_err(|e| at_key("method", e)),
            Self::Simsiam(c) => c.validate().map_err(|e| at_key("method", e)),
            Self::Swav(c) => c.validate().map_err(|e| at_key("method", e)),
            Self::Densecl(c) => c.validate().map_err(|e| at_key("method", e)),
            Self::Supcon(c) => {
                check_projection(&c.projection)?;
                c.loss.build().map_err(|e| at_key("method.loss", e))?;
                Ok(())
            }
            Self::Supervised(c) => c.validate(),
        }
    }

    /// Builds the method's variables in `vs` (the generator already seeded).
    ///
    /// # Errors
    /// The method's config errors.
    pub fn build(&self, vs: &VarStore, cfg: &Config) -> Result<Box<dyn Method>> {
        Ok(match self {
            Self::Simclr(c) => Box::new(SimClr::new(&vs.root(), cfg, c)?),
            Self::SimclrHcl(c) => Box::new(SimClr::with_loss(
                &vs.root(),
                cfg,
                &c.projection,
                Box::new(c.loss.build()?),
            )?),
            Self::SimclrDcl(c) => Box::new(SimClr::with_loss(
                &vs.root(),
                cfg,
                &c.projection,
                Box::new(c.loss.build()?),
            )?),
            Self::Mocov1(c) | Self::Mocov2(c) => Box::new(Moco::new(vs, cfg, c)?),
            Self::Mocov3(c) => Box::new(MocoV3::new(vs, cfg, c)?),
            Self::Byol(c) => Box::new(Byol::new(vs, cfg, c)?),
            Self::Simsiam(c) => Box::new(SimSiam::new(vs, cfg, c)?),
            Self::Swav(c) => Box::new(Swav::new(vs, cfg, c)?),
            Self::Densecl(c) => Box::new(DenseCl::new(vs, cfg, c)?),
            Self::Supcon(c) => Box::new(SupConMethod::new(vs, cfg, c)?),
            Self::Supervised(c) => Box::new(Supervised::new(vs, cfg, c)?),
        })
    }
}

/// Checks a projection head's sizes.
fn check_projection(p: &ProjectionConfig) -> Result<()> {
    if p.hidden_dim < 1 || p.output_dim < 1 {
        return Err(TrainError::Invalid {
            field: "method.projection".into(),
            value: format!("{p:?}"),
            reason: "sizes must be ≥ 1".into(),
        });
    }
    Ok(())
}

impl<'de> Deserialize<'de> for MethodConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut value = Value::deserialize(d)?;
        let names = METHOD_NAMES.join(", ");
        let map = value
            .as_object_mut()
            .ok_or_else(|| D::Error::custom(format!("expected a mapping with `name` ({names})")))?;
        let name = match map.remove("name") {
            Some(Value::String(s)) => s,
            _ => return Err(D::Error::custom(format!("needs `name`: one of {names}"))),
        };
        fn keys<T: DeserializeOwned, E: serde::de::Error>(v: Value, name: &str) -> Result<T, E> {
            serde_path_to_error::deserialize(v)
                .map_err(|e| E::custom(format!("{name}: `method.{}`: {}", e.path(), e.inner())))
        }
        match name.as_str() {
            "simclr" => keys(value, &name).map(Self::Simclr),
            "simclr-hcl" => keys(value, &name).map(Self::SimclrHcl),
            "simclr-dcl" => keys(value, &name).map(Self::SimclrDcl),
            "mocov1" => keys(value, &name).map(Self::Mocov1),
            "mocov2" => keys(value, &name).map(Self::Mocov2),
            "mocov3" => keys(value, &name).map(Self::Mocov3),
            "byol" => keys(value, &name).map(Self::Byol),
            "simsiam" => keys(value, &name).map(Self::Simsiam),
            "swav" => keys(value, &name).map(|c: SwavConfig| Self::Swav(Box::new(c))),
            "densecl" => keys(value, &name).map(Self::Densecl),
            "supcon" => keys(value, &name).map(Self::Supcon),
            "supervised" => keys(value, &name).map(Self::Supervised),
            other => Err(D::Error::custom(format!("unknown method `{other}`: one of {names}"))),
        }
    }
}
