//! An evaluation written three ways: JSON (everything), Markdown (the tables
//! a person reads) and SVG (the confusion matrix and the training curves, a
//! picture a person would rather look at).

use super::metrics::Metrics;
use super::model::ModelCard;
use plotters::prelude::*;
use std::path::Path;

/// What `graft eval` writes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    /// The model folder.
    pub model: String,
    /// The test file and its SHA-256.
    pub test_file: String,
    pub test_sha256: String,
    pub fusion: String,
    /// Share of test examples that got at least one fact.
    pub coverage: f64,
    pub metrics: Metrics,
    /// Examples per second, linking and fusion included.
    pub examples_per_s: f64,
}

/// The Markdown report.
pub fn markdown(report: &EvalReport, card: &ModelCard) -> String {
    let m = &report.metrics;
    let mut s = String::new();
    s.push_str(&format!("# Evaluation of `{}`\n\n", report.model));
    s.push_str(&format!(
        "Test file `{}` (sha256 `{}`), {} examples; fusion `{}`, encoder `{}` ({}), facts for {:.1} % of the examples; {:.1} examples/s.\n\n",
        report.test_file,
        &report.test_sha256[..report.test_sha256.len().min(16)],
        m.examples,
        report.fusion,
        card.encoder.base,
        if card.encoder.frozen { "frozen" } else { "fine-tuned" },
        report.coverage * 100.0,
        report.examples_per_s
    ));
    s.push_str(&format!(
        "| accuracy | macro P | macro R | macro F1 | micro F1 |\n|---:|---:|---:|---:|---:|\n| {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n\n",
        m.accuracy, m.macro_avg.precision, m.macro_avg.recall, m.macro_avg.f1, m.micro_avg.f1
    ));
    s.push_str("| label | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|\n");
    for l in &m.per_label {
        s.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.4} | {} |\n",
            l.label, l.precision, l.recall, l.f1, l.support
        ));
    }
    if m.confusion.len() == m.labels.len()
        && m.confusion
            .first()
            .is_some_and(|r| r.len() == m.labels.len())
    {
        s.push_str("\nConfusion matrix (rows: true label, columns: predicted)\n\n| |");
        for l in &m.labels {
            s.push_str(&format!(" {l} |"));
        }
        s.push_str("\n|---|");
        s.push_str(&"---:|".repeat(m.labels.len()));
        s.push('\n');
        for (l, row) in m.labels.iter().zip(&m.confusion) {
            s.push_str(&format!("| **{l}** |"));
            for c in row {
                s.push_str(&format!(" {c} |"));
            }
            s.push('\n');
        }
    }
    s
}

/// Draws the confusion matrix (left) and the training curves from the
/// card's history (right: train loss and dev macro-F1 per epoch) as SVG.
pub fn svg(path: &Path, report: &EvalReport, card: &ModelCard) -> Result<(), String> {
    let m = &report.metrics;
    let n = m.labels.len().max(1);
    let root = SVGBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(620);
    let single = m.confusion.first().is_some_and(|r| r.len() == n);
    if single {
        let max = m
            .confusion
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let mut chart = ChartBuilder::on(&left)
            .caption(
                format!(
                    "Confusion matrix — accuracy {:.3}, macro-F1 {:.3}",
                    m.accuracy, m.macro_avg.f1
                ),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(70)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..n as f64, 0f64..n as f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc("predicted")
            .y_desc("true")
            .draw()
            .map_err(|e| e.to_string())?;
        let small = n <= 12;
        for (t, row) in m.confusion.iter().enumerate() {
            // True labels top to bottom, in the order of `labels`.
            let y = (n - 1 - t) as f64;
            for (p, &c) in row.iter().enumerate() {
                let x = p as f64;
                let shade = c as f64 / max;
                let color = RGBColor(
                    (255.0 - 200.0 * shade) as u8,
                    (255.0 - 140.0 * shade) as u8,
                    255,
                );
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        color.filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                if small {
                    let ink = if shade > 0.6 { WHITE } else { BLACK };
                    chart
                        .draw_series(std::iter::once(Text::new(
                            c.to_string(),
                            (x + 0.45, y + 0.55),
                            ("sans-serif", 14).into_font().color(&ink),
                        )))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        // Label names at the centres of the rows and columns (axis ticks
        // would sit on the cell edges).
        if small {
            let style = ("sans-serif", 12).into_font().color(&BLACK);
            for (i, label) in m.labels.iter().enumerate() {
                let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
                left.draw(&Text::new(
                    label.clone(),
                    (px - 4 * label.chars().count() as i32 / 2 - 4, py + 6),
                    style.clone(),
                ))
                .map_err(|e| e.to_string())?;
                let (qx, qy) = chart.backend_coord(&(0.0, (n - 1 - i) as f64 + 0.5));
                left.draw(&Text::new(
                    label.clone(),
                    (qx - 8 - 7 * label.chars().count() as i32, qy - 6),
                    style.clone(),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
    }
    let epochs: Vec<(f64, f64, f64)> = card
        .history
        .iter()
        .filter_map(|h| {
            Some((
                h.get("epoch")?.as_f64()?,
                h.get("train_loss")?.as_f64()?,
                h.get("dev_macro_f1")?.as_f64()?,
            ))
        })
        .collect();
    if !epochs.is_empty() {
        let last = epochs.last().map_or(1.0, |e| e.0).max(1.0);
        let max_loss = epochs.iter().map(|e| e.1).fold(0.0, f64::max).max(1e-6);
        let mut chart = ChartBuilder::on(&right)
            .caption(
                "Training: loss (red) and dev macro-F1 (blue)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .right_y_label_area_size(50)
            .build_cartesian_2d(1.0..last.max(2.0), 0.0..max_loss * 1.05)
            .map_err(|e| e.to_string())?
            .set_secondary_coord(1.0..last.max(2.0), 0.0..1.0);
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("train loss")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .configure_secondary_axes()
            .y_desc("dev macro-F1")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                epochs.iter().map(|e| (e.0, e.1)),
                RED.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        chart
            .draw_secondary_series(LineSeries::new(
                epochs.iter().map(|e| (e.0, e.2)),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
