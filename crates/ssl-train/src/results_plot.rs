//! `docs/results.png`: every run's linear top-1 against its wall time, one labelled point each.

use std::path::Path;

use plotters::prelude::*;

use crate::plot::{draw_err, register_font, FONTS};
use crate::Result;

/// One run of the results table.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultPoint {
    /// The row's name (the method; SupCon and supervised are marked as using labels).
    pub label: String,
    /// Wall time of pre-training and evaluation, minutes.
    pub minutes: f64,
    /// Linear-probe top-1, in [0, 1].
    pub linear_top1: f64,
    /// Whether the encoder trained on labels (drawn in grey).
    pub uses_labels: bool,
}

/// Draws the points into a PNG of 1000 × 600 at `path`: x = minutes, y = linear top-1 (%).
///
/// # Errors
/// [`crate::TrainError::RunIo`] when no font is found or the PNG cannot be written.
pub fn plot_results(path: &Path, points: &[ResultPoint]) -> Result<()> {
    if !register_font() {
        return Err(draw_err(path, format!("no font for the labels: looked for {FONTS:?}")));
    }
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let x_max = points.iter().fold(1.0f64, |m, p| m.max(p.minutes)) * 1.15;
    let ys = points.iter().map(|p| p.linear_top1 * 100.0);
    let (lo, hi) = ys.fold((100.0f64, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    let (lo, hi) = if lo <= hi { (lo - 1.0, hi + 1.0) } else { (0.0, 100.0) };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "linear top-1 against wall time (black: self-supervised, grey: uses labels)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x_max, lo..hi)
        .map_err(|e| draw_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("minutes (pre-training and evaluation)")
        .y_desc("linear top-1 %")
        .draw()
        .map_err(|e| draw_err(path, e))?;
    for p in points {
        let colour = if p.uses_labels { RGBColor(140, 140, 140) } else { BLACK };
        let at = (p.minutes, p.linear_top1 * 100.0);
        chart
            .draw_series(std::iter::once(Circle::new(at, 5, colour.filled())))
            .map_err(|e| draw_err(path, e))?;
        chart
            .draw_series(std::iter::once(Text::new(
                p.label.clone(),
                at,
                ("sans-serif", 16).into_font().color(&colour),
            )))
            .map_err(|e| draw_err(path, e))?;
    }
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_of_the_requested_size() {
        let path = std::env::temp_dir().join(format!("ssl-results-{}.png", std::process::id()));
        let point = |label: &str, minutes, linear_top1, uses_labels| ResultPoint {
            label: label.into(),
            minutes,
            linear_top1,
            uses_labels,
        };
        let points = [point("simclr", 13.4, 0.882, false), point("supervised", 12.0, 0.91, true)];
        plot_results(&path, &points).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1000);
        assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 600);
    }
}
