//! The sweep picture (the distribution of each key time across seeds) and the bench
//! picture (detection and convergence against cluster size).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::PlotError;
use crate::bench::Row;

fn err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Writes the CDF of each series of `values` (ms) to `path`.
pub fn cdf_svg(
    title: &str,
    values: &BTreeMap<String, Vec<f64>>,
    path: &Path,
) -> Result<(), PlotError> {
    let series: Vec<(&String, Vec<f64>)> = values
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            let mut v = v.clone();
            v.sort_by(f64::total_cmp);
            (k, v)
        })
        .collect();
    let max = series
        .iter()
        .filter_map(|s| s.1.last().copied())
        .fold(1.0, f64::max);
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..max * 1.05, 0f64..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("ms")
        .y_desc("fraction of seeds at or below")
        .draw()
        .map_err(err)?;
    for (k, (name, v)) in series.iter().enumerate() {
        let n = v.len() as f64;
        let mut pts = vec![(0.0, 0.0)];
        for (j, &x) in v.iter().enumerate() {
            pts.push((x, j as f64 / n));
            pts.push((x, (j + 1) as f64 / n));
        }
        pts.push((max * 1.05, 1.0));
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(err)?
            .label(format!("{name} ({} runs)", v.len()))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Writes convergence and detection times against cluster size to `path`.
pub fn bench_svg(rows: &[Row], path: &Path) -> Result<(), PlotError> {
    type Get = fn(&Row) -> Option<f64>;
    let series: [(&str, Get); 3] = [
        ("converged_ms", |r| r.converged_ms.filter(|_| !r.formed)),
        ("first_detect_ms", |r| r.first_detect_ms),
        ("all_detect_ms", |r| r.all_detect_ms),
    ];
    let lo = rows.iter().map(|r| r.nodes).min().unwrap_or(1).max(1) as f64;
    let hi = rows.iter().map(|r| r.nodes).max().unwrap_or(2).max(2) as f64;
    let top = rows
        .iter()
        .flat_map(|r| series.iter().filter_map(|s| (s.1)(r)))
        .fold(1.0, f64::max);
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "convergence and crash detection against cluster size",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), 0f64..top * 1.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("nodes")
        .y_desc("ms")
        .draw()
        .map_err(err)?;
    for (k, (name, get)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| get(r).map(|v| (r.nodes as f64, v)))
            .collect();
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
