//! `curves.png`: the training loss and the kNN monitor per epoch.

use std::path::Path;

use plotters::prelude::*;

use crate::{EpochMetrics, Result, TrainError};

/// Fonts tried for the labels (Debian's fonts-dejavu-core, which set-up installs).
pub(crate) const FONTS: [&str; 2] =
    ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"];

pub(crate) fn register_font() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        FONTS.iter().any(|path| match std::fs::read(path) {
            Ok(bytes) => {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            }
            Err(_) => false,
        })
    })
}

pub(crate) fn draw_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::RunIo { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) }
}

/// Draws, into the PNG at `path`: the loss of every step with its per-epoch mean (left); the
/// kNN monitor's and the online linear probe's top-1 per epoch (middle); the collapse monitors
/// per epoch, as fractions of their healthy values: std·√d and RankMe / d (right).
///
/// # Errors
/// [`TrainError::RunIo`] when no font is found (install fonts-dejavu-core) or the PNG cannot
/// be written.
pub fn plot_curves(path: &Path, losses: &[f64], epochs: &[EpochMetrics]) -> Result<()> {
    if !register_font() {
        return Err(draw_err(path, format!("no font for the labels: looked for {FONTS:?}")));
    }
    let root = BitMapBackend::new(path, (1800, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let panels = root.split_evenly((1, 3));
    let steps_per_epoch = losses.len() as f64 / epochs.len().max(1) as f64;
    let x_max = epochs.len().max(1) as f64 + 0.5;

    let (lo, hi) = losses.iter().fold((f64::MAX, f64::MIN), |(a, b), &l| (a.min(l), b.max(l)));
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("training loss", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..x_max, (lo - pad)..(hi + pad))
        .map_err(|e| draw_err(path, e))?;
    chart.configure_mesh().x_desc("epoch").y_desc("loss").draw().map_err(|e| draw_err(path, e))?;
    let per_step = losses.iter().enumerate().map(|(i, &l)| (i as f64 / steps_per_epoch, l));
    chart
        .draw_series(LineSeries::new(per_step, RGBColor(150, 180, 230)))
        .map_err(|e| draw_err(path, e))?;
    let means = epochs.iter().map(|e| (e.epoch as f64 + 1.0, e.loss));
    chart
        .draw_series(LineSeries::new(means, BLUE.stroke_width(2)).point_size(4))
        .map_err(|e| draw_err(path, e))?;

    let series = |f: fn(&EpochMetrics) -> Option<f64>, scale: f64| -> Vec<(f64, f64)> {
        epochs.iter().filter_map(|e| f(e).map(|v| (e.epoch as f64 + 1.0, v * scale))).collect()
    };
    let knn = series(|e| e.knn_monitor, 100.0);
    let online = series(|e| e.online_linear, 100.0);
    let all = knn.iter().chain(&online);
    let (klo, khi) = all.fold((100.0f64, 0.0f64), |(a, b), &(_, v)| (a.min(v), b.max(v)));
    let mut chart = ChartBuilder::on(&panels[1])
        .caption(
            "held-out monitors (top-1 %): kNN-200 red, online linear green",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..x_max, (klo.min(khi) - 1.0)..(khi.max(klo) + 1.0))
        .map_err(|e| draw_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("top-1 %")
        .draw()
        .map_err(|e| draw_err(path, e))?;
    for (points, colour) in [(knn, RED), (online, GREEN)] {
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)).point_size(4))
            .map_err(|e| draw_err(path, e))?;
    }

    let std = series(|e| e.embedding_std, 1.0);
    let rank = series(|e| e.rankme, 1.0);
    let top = |v: &[(f64, f64)]| v.iter().fold(1e-6f64, |m, &(_, y)| m.max(y)) * 1.1;
    let mut chart = ChartBuilder::on(&panels[2])
        .caption("collapse: embedding std (blue, left), RankMe (orange, right)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .right_y_label_area_size(48)
        .build_cartesian_2d(0f64..x_max, 0f64..top(&std))
        .map_err(|e| draw_err(path, e))?
        .set_secondary_coord(0f64..x_max, 0f64..top(&rank));
    chart.configure_mesh().x_desc("epoch").y_desc("std").draw().map_err(|e| draw_err(path, e))?;
    chart.configure_secondary_axes().y_desc("RankMe").draw().map_err(|e| draw_err(path, e))?;
    chart
        .draw_series(LineSeries::new(std, BLUE.stroke_width(2)).point_size(4))
        .map_err(|e| draw_err(path, e))?;
    chart
        .draw_secondary_series(
            LineSeries::new(rank, RGBColor(230, 140, 20).stroke_width(2)).point_size(4),
        )
        .map_err(|e| draw_err(path, e))?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_of_the_requested_size() {
        let path = std::env::temp_dir().join(format!("ssl-curves-{}.png", std::process::id()));
        let losses: Vec<f64> = (0..40).map(|i| 6.0 - i as f64 * 0.05).collect();
        let epochs: Vec<EpochMetrics> = (0..4)
            .map(|e| EpochMetrics {
                epoch: e,
                loss: 5.0 - e as f64 * 0.3,
                knn_monitor: Some(0.7 + e as f64 * 0.02),
                online_linear: Some(0.75 + e as f64 * 0.02),
                embedding_std: Some(0.08),
                rankme: Some(40.0 + e as f64),
            })
            .collect();
        plot_curves(&path, &losses, &epochs).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // PNG signature, then the IHDR chunk: width and height as big-endian u32 at bytes 16..24.
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1800);
        assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 450);
    }
}
