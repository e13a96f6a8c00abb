//! The pre-training loop.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ssl_aug::aug_rng;
use ssl_data::{IdxImages, Split};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::{Config, Result, SimClr};

/// What a finished run measured.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// Optimiser steps taken.
    pub steps: u64,
    /// The loss of every step.
    pub losses: Vec<f64>,
    /// Wall time of the loop, seconds.
    pub seconds: f64,
    /// Source images per second (each gives two views).
    pub images_per_second: f64,
}

/// Pre-trains SimCLR on the training split of `cfg.data.dir`, on the CPU or the first GPU.
///
/// Seeds libtorch's generator with `cfg.seed` once, before any variable exists.
///
/// # Errors
/// Data, model and loss errors, each naming its file or field.
pub fn train(cfg: &Config) -> Result<TrainReport> {
    cfg.validate()?;
    tch::manual_seed(cfg.seed as i64);
    let device = Device::cuda_if_available();
    let data = IdxImages::fashion_mnist(&cfg.data.dir, Split::Train)?;
    let images = data.to_tensor().to_device(device); // [N, 1, 28, 28] uint8

    let vs = nn::VarStore::new(device);
    let model = SimClr::new(&vs.root(), cfg)?;
    let o = cfg.optim;
    let sgd = nn::Sgd { momentum: o.momentum, dampening: 0.0, wd: o.weight_decay, nesterov: false };
    let mut opt = sgd.build(&vs, o.lr)?;

    let b = cfg.data.batch_size;
    let per_epoch = (data.len() as i64 / b) as u64;
    let total = (per_epoch * cfg.train.epochs).min(cfg.train.max_steps.unwrap_or(u64::MAX));
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
            .expect("static template"),
    );
    let start = Instant::now();
    let mut losses = Vec::with_capacity(total as usize);
    'epochs: for epoch in 0..cfg.train.epochs {
        let order = Tensor::randperm(data.len() as i64, (Kind::Int64, device)); // [N]
        for i in 0..per_epoch {
            if losses.len() as u64 == total {
                break 'epochs;
            }
            let idx = order.narrow(0, i as i64 * b, b); // [B]
            let x = images.index_select(0, &idx).to_kind(Kind::Float) / 255.0; // [B, 1, H, W]
            let mut rng = aug_rng(cfg.seed, &[epoch, i]);
            let (v1, v2) = model.views(&x, &mut rng);
            let loss = model.loss(&v1, &v2);
            opt.backward_step(&loss);
            let value = loss.double_value(&[]);
            losses.push(value);
            let ips = (losses.len() as i64 * b) as f64 / start.elapsed().as_secs_f64();
            bar.set_message(format!("epoch {epoch}  loss {value:.4}  {ips:.0} img/s"));
            bar.inc(1);
        }
    }
    bar.finish();
    let seconds = start.elapsed().as_secs_f64();
    let steps = losses.len() as u64;
    Ok(TrainReport {
        steps,
        losses,
        seconds,
        images_per_second: (steps as f64 * b as f64) / seconds,
    })
}
