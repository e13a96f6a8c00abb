//! `curves.png`: the training loss and the kNN monitor per epoch.

use std::path::Path;

use plotters::prelude::*;

use crate::{EpochMetrics, Result, TrainError};

/// Fonts tried for the labels (Debian's fonts-dejavu-core, which set-up installs).
const FONTS: [&str; 2] =
    ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"];

fn register_font() -> bool {
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

fn draw_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::RunIo { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) }
}

/// Draws the loss of every step with its per-epoch mean (left) and the kNN monitor's top-1 per
/// epoch (right) into the PNG at `path`.
///
/// # Errors
/// [`TrainError::RunIo`] when no font is found (install fonts-dejavu-core) or the PNG cannot
/// be written.
pub fn plot_curves(path: &Path, losses: &[f64], epochs: &[EpochMetrics]) -> Result<()> {
    if !register_font() {
        return Err(draw_err(path, format!("no font for the labels: looked for {FONTS:?}")));
    }
    let root = BitMapBackend::new(path, (1200, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let (left, right) = root.split_horizontally(600);
    let steps_per_epoch = losses.len() as f64 / epochs.len().max(1) as f64;

    let (lo, hi) = losses.iter().fold((f64::MAX, f64::MIN), |(a, b), &l| (a.min(l), b.max(l)));
    let mut chart = ChartBuilder::on(&left)
        .caption("NT-Xent loss", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..(epochs.len().max(1) as f64), (lo * 0.98)..(hi * 1.02))
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

    let knn: Vec<(f64, f64)> = epochs
        .iter()
        .filter_map(|e| e.knn_monitor.map(|a| (e.epoch as f64 + 1.0, a * 100.0)))
        .collect();
    let (klo, khi) = knn.iter().fold((100.0f64, 0.0f64), |(a, b), &(_, v)| (a.min(v), b.max(v)));
    let mut chart = ChartBuilder::on(&right)
        .caption("kNN-200 monitor (top-1 %)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(
            0f64..(epochs.len().max(1) as f64 + 0.5),
            (klo.min(khi) - 1.0)..(khi.max(klo) + 1.0),
        )
        .map_err(|e| draw_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("top-1 %")
        .draw()
        .map_err(|e| draw_err(path, e))?;
    chart
        .draw_series(LineSeries::new(knn, RED.stroke_width(2)).point_size(4))
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
            })
            .collect();
        plot_curves(&path, &losses, &epochs).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // PNG signature, then the IHDR chunk: width and height as big-endian u32 at bytes 16..24.
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1200);
        assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 450);
    }
}
