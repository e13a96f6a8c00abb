//! `ssl train --resume`: a run killed with SIGKILL at an arbitrary step and resumed from its
//! newest checkpoint ends with every tensor (weights, momentum encoder, queue, optimiser
//! moments) bit-identical to an uninterrupted run of the same config — for SimCLR and for
//! MoCo v2 (momentum encoder, queue, shuffled key BatchNorm).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ssl_testutil::ScratchDir;
use ssl_train::checkpoint::{list, read};
use tch::Tensor;

/// 60 CIFAR-10 training and 9 test records of three colour classes with a little noise.
fn write_cifar(dir: &Path) {
    let record = |i: usize| -> Vec<u8> {
        let k = i % 3;
        let mut r = vec![k as u8];
        r.extend((0..3072).map(|p| {
            let base = if p / 1024 == k { 190 } else { 40 };
            (base + (i * 7 + p * 3) % 41 - 20) as u8
        }));
        r
    };
    std::fs::create_dir_all(dir).unwrap();
    for b in 0..5 {
        let bytes: Vec<u8> = (12 * b..12 * b + 12).flat_map(record).collect();
        std::fs::write(dir.join(format!("data_batch_{}.bin", b + 1)), bytes).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), (100..109).flat_map(record).collect::<Vec<_>>())
        .unwrap();
}

/// `ssl train` of `config` on the CIFAR files in `data` into `run`: 30 steps of batch 8
/// (7 batches an epoch), a checkpoint every 4 steps and at each epoch end.
fn train_cmd(config: &str, data: &Path, run: &Path, extra: &[&str]) -> Command {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssl"));
    cmd.arg("train").arg("--config").arg(configs.join(config)).arg("--run-dir").arg(run);
    let sets = [
        "data.format=cifar10".to_string(),
        format!("data.dir={}", data.display()),
        "data.batch_size=8".into(),
        "data.workers=2".into(),
        "model.backbone.in_channels=3".into(),
        "model.backbone.width=4".into(),
        "train.budget_minutes=null".into(),
        "train.epochs=null".into(),
        "train.steps=30".into(),
        "optim.warmup_epochs=1".into(),
        "checkpoint.every_steps=4".into(),
        "eval.monitor_bank=40".into(),
        "eval.monitor_queries=20".into(),
        "eval.knn.k=5".into(),
        "eval.linear.epochs=2".into(),
        "eval.baselines=false".into(),
        "eval.resize=null".into(),
    ];
    for s in sets.iter().map(String::as_str).chain(extra.iter().copied()) {
        cmd.arg("--set").arg(s);
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

/// Step lines in `run`'s metrics so far.
fn steps_logged(run: &Path) -> usize {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default();
    text.lines().filter(|l| l.starts_with("{\"step\":")).count()
}

/// The newest checkpoint's tensors.
fn final_tensors(run: &Path) -> (u64, HashMap<String, Tensor>) {
    let newest = list(&run.join("checkpoints")).unwrap().pop().expect("a checkpoint");
    let c = read(&newest).unwrap();
    let names: Vec<String> = c.tensors.names().iter().map(|s| s.to_string()).collect();
    let tensors = names.iter().map(|n| (n.clone(), c.tensors.get(n).unwrap().shallow_clone()));
    (c.position.steps, tensors.collect())
}

fn killed_and_resumed_equals_uninterrupted(config: &str, extra: &[&str], kill_after: usize) {
    let dir = ScratchDir::new(&format!("resume-{config}"));
    let data = dir.join("cifar");
    write_cifar(&data);
    let whole = dir.join("whole");
    let status = train_cmd(config, &data, &whole, extra).status().unwrap();
    assert!(status.success(), "the uninterrupted run failed");

    let killed = dir.join("killed");
    let mut child = train_cmd(config, &data, &killed, extra).spawn().unwrap();
    let start = Instant::now();
    while steps_logged(&killed) < kill_after {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        assert!(start.elapsed() < Duration::from_secs(300), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = steps_logged(&killed);
    assert!(at_kill < 30, "killed after the last step ({at_kill})");
    assert!(!killed.join("summary.json").exists());

    let mut resume = Command::new(env!("CARGO_BIN_EXE_ssl"));
    resume.args(["train", "--resume"]).arg(&killed).stdout(Stdio::null());
    assert!(resume.status().unwrap().success(), "the resumed run failed");
    assert_eq!(steps_logged(&killed), 30, "metrics hold each step once");

    let (steps_a, a) = final_tensors(&whole);
    let (steps_b, b) = final_tensors(&killed);
    assert_eq!((steps_a, steps_b), (30, 30));
    let mut names: Vec<&String> = a.keys().collect();
    names.sort();
    assert_eq!(names, {
        let mut n: Vec<&String> = b.keys().collect();
        n.sort();
        n
    });
    for name in names {
        assert!(a[name].equal(&b[name]), "{config}: {name} differs after resuming");
    }
    let model = |run: &Path| std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(model(&whole), model(&killed), "the backbones' files, byte for byte");
    // Epoch lines: the mean losses and the monitors agree too (the collapse monitors read
    // only the embeddings after the checkpoint in a resumed epoch, so they are left out).
    let epochs = |run: &Path| -> Vec<(String, String, String)> {
        let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        text.lines()
            .filter(|l| !l.starts_with("{\"step\":"))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let f = |k: &str| v[k].to_string();
                (f("loss"), f("knn_monitor"), f("online_linear"))
            })
            .collect()
    };
    assert_eq!(epochs(&whole), epochs(&killed), "{config}: the epoch lines");
}

#[test]
fn simclr_killed_mid_run_resumes_to_the_same_weights() {
    killed_and_resumed_equals_uninterrupted(
        "simclr-fmnist.yaml",
        &["method.projection.hidden_dim=16", "method.projection.output_dim=8"],
        9,
    );
}

#[test]
fn mocov2_with_its_queue_and_key_encoder_resumes_to_the_same_weights() {
    killed_and_resumed_equals_uninterrupted(
        "mocov2-fmnist.yaml",
        &[
            "method.head.hidden_dim=16",
            "method.head.output_dim=8",
            "method.queue_size=20",
            "method.key_bn_splits=2",
        ],
        13,
    );
}
