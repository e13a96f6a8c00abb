//! One training step (forward, backward, optimiser, EMA, queue) of each shipped method on the
//! main job's backbone and batch, timed; plus the EMA update and the queue's enqueue alone.
//! `cargo xtask bench-methods` runs it beside `benches/reference/method_step.py` (PyTorch
//! eager, the same models) and writes the table in docs/benchmarks.md.
//!
//! Prints one JSON line per method: `method`, `device`, `batch`, `ours_step_ms` (median of 10
//! steps after 3), `ema_ms`, `queue_ms` (MoCo v2 and BYOL rows only).

use serde_json::json;
use ssl_moco::{BufferRule, FeatureQueue, MomentumEncoder};
use ssl_testutil::median_ms;
use ssl_train::config::{self, MethodConfig};
use ssl_train::{build_model, Batch, Encoder, Optimizer, StepContext};
use tch::{Device, Kind, Tensor};

const WARMUP: usize = 3;
const RUNS: usize = 10;

fn main() -> anyhow::Result<()> {
    let device = Device::Cpu;
    let configs = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");
    for name in ["simclr", "mocov2", "byol", "simsiam"] {
        let path = format!("{configs}/{name}-fmnist.yaml");
        let cfg = config::load(path.as_ref(), &["model.backbone.precision=f32".into()])?;
        let (vs, mut method) = build_model(&cfg, device)?;
        let o = cfg.optim;
        let mut opt = Optimizer::new(&vs, o.kind, o.momentum, o.weight_decay, o.trust_coefficient)
            .with_lr_groups(|n| method.lr_group(n), o.lr);
        let b = cfg.data.batch_size;
        let [h, w] = cfg.augment.crop.size;
        let views: Vec<Tensor> =
            (0..2).map(|_| Tensor::rand([b, 1, h, w], (Kind::Float, device))).collect();
        let ctx = StepContext { step: 100, total: 1000, epoch: 0 };
        let step_ms = median_ms(WARMUP, RUNS, || {
            let out = method.step(&Batch::unlabelled(&views), &ctx).expect("step");
            opt.backward_step(&out.loss, o.lr * 0.5);
            method.after_step(&ctx).expect("after_step");
        });
        let (mut ema_ms, mut queue_ms) = (None, None);
        let head = match &cfg.method {
            MethodConfig::Mocov2(m) => Some(m.head.projection()),
            MethodConfig::Byol(b) => Some(b.projector.projection()),
            _ => None,
        };
        if let Some(head) = head {
            // The method's own target, rebuilt beside it: backbone + projector, as in the step.
            let online = tch::nn::VarStore::new(device);
            let build = |p: &tch::nn::Path| Encoder::new(p, &cfg.model.backbone, &head);
            let _net = build(&online.root())?;
            let target = MomentumEncoder::new(&online, BufferRule::Own, build)?;
            ema_ms = Some(median_ms(WARMUP, RUNS * 5, || target.update(0.99).expect("update")));
        }
        if let MethodConfig::Mocov2(m) = &cfg.method {
            let d = m.head.output_dim;
            let mut queue = FeatureQueue::new(m.queue_size, d, Kind::Float, device)?;
            let keys = Tensor::randn([b, d], (Kind::Float, device));
            queue_ms = Some(median_ms(WARMUP, RUNS * 5, || {
                queue.enqueue(&keys).expect("enqueue");
                let _ = queue.negatives();
            }));
        }
        println!(
            "{}",
            json!({"method": name, "device": "cpu", "batch": b, "ours_step_ms": step_ms,
                   "ema_ms": ema_ms, "queue_ms": queue_ms})
        );
    }
    Ok(())
}
