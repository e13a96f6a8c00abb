//! The method registry: `method: {name: ..., ...}` in the YAML, one variant per shipped method.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use ssl_loss::NtXentConfig;
use tch::nn::VarStore;

use crate::byol::{Byol, ByolConfig};
use crate::config::ProjectionConfig;
use crate::method::Method;
use crate::moco::{Moco, MocoConfig};
use crate::simsiam::{SimSiam, SimSiamConfig};
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

/// Which method trains, with its own keys. In YAML a mapping whose `name` is the method
/// (`simclr`, `mocov1`, `mocov2`, `byol`, `simsiam`) and whose other keys are that method's;
/// unknown keys are errors naming `method.<key>`.
///
/// The enum is the registry: an exhaustive `match` the compiler checks, so a new method is a
/// variant, a file and a YAML (see ARCHITECTURE.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum MethodConfig {
    /// SimCLR (Chen et al. 2020).
    Simclr(SimClrConfig),
    /// MoCo v1 (He et al. 2020): linear head, τ 0.07.
    Mocov1(MocoConfig),
    /// MoCo v2 (Chen et al. 2020): MLP head, τ 0.2, blur.
    Mocov2(MocoConfig),
    /// BYOL (Grill et al. 2020).
    Byol(ByolConfig),
    /// SimSiam (Chen & He 2021).
    Simsiam(SimSiamConfig),
}

/// The names `method.name` accepts.
pub const METHOD_NAMES: [&str; 5] = ["simclr", "mocov1", "mocov2", "byol", "simsiam"];

impl MethodConfig {
    /// The method's name as the YAML writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Simclr(_) => "simclr",
            Self::Mocov1(_) => "mocov1",
            Self::Mocov2(_) => "mocov2",
            Self::Byol(_) => "byol",
            Self::Simsiam(_) => "simsiam",
        }
    }

    /// The method's name as its paper writes it.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Simclr(_) => "SimCLR",
            Self::Mocov1(_) => "MoCo v1",
            Self::Mocov2(_) => "MoCo v2",
            Self::Byol(_) => "BYOL",
            Self::Simsiam(_) => "SimSiam",
        }
    }

    /// Checks the method's keys without allocating tensors.
    ///
    /// # Errors
    /// [`TrainError::Invalid`] naming `method.<key>`, or a leaf crate's config error.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Simclr(c) => {
                if c.projection.hidden_dim < 1 || c.projection.output_dim < 1 {
                    return Err(TrainError::Invalid {
                        field: "method.projection".into(),
                        value: format!("{:?}", c.projection),
                        reason: "sizes must be ≥ 1".into(),
                    });
                }
                if !c.loss.learnable_temperature {
                    c.loss.build()?;
                }
                Ok(())
            }
            Self::Mocov1(c) | Self::Mocov2(c) => c.validate(),
            Self::Byol(c) => c.validate(),
            Self::Simsiam(c) => c.validate(),
        }
    }

    /// Builds the method's variables in `vs` (the generator already seeded).
    ///
    /// # Errors
    /// The method's config errors.
    pub fn build(&self, vs: &VarStore, cfg: &Config) -> Result<Box<dyn Method>> {
        Ok(match self {
            Self::Simclr(c) => Box::new(SimClr::new(&vs.root(), cfg, c)?),
            Self::Mocov1(c) | Self::Mocov2(c) => Box::new(Moco::new(vs, cfg, c)?),
            Self::Byol(c) => Box::new(Byol::new(vs, cfg, c)?),
            Self::Simsiam(c) => Box::new(SimSiam::new(vs, cfg, c)?),
        })
    }
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
            "mocov1" => keys(value, &name).map(Self::Mocov1),
            "mocov2" => keys(value, &name).map(Self::Mocov2),
            "byol" => keys(value, &name).map(Self::Byol),
            "simsiam" => keys(value, &name).map(Self::Simsiam),
            other => Err(D::Error::custom(format!("unknown method `{other}`: one of {names}"))),
        }
    }
}
