//! The timeline picture: one lane per node (or per block of nodes in a large cluster)
//! colored by the state most nodes give it, a lane per group with its leaders and
//! terms, faults shaded, and a red line where a checker fired.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::record::{State, Timeline};
use super::PlotError;

/// At most this many node lanes; a larger cluster shares them out in blocks.
const MAX_LANES: usize = 100;

fn state_color(s: State) -> RGBColor {
    match s {
        State::Unknown => RGBColor(235, 235, 235),
        State::Alive => RGBColor(120, 200, 120),
        State::Suspect => RGBColor(250, 170, 40),
        State::Failed => RGBColor(215, 50, 40),
        State::Left => RGBColor(130, 130, 130),
    }
}

/// A color per leader, so that a change of leader shows.
fn leader_color(node: u32) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(60, 110, 200),
        RGBColor(150, 80, 190),
        RGBColor(30, 150, 160),
        RGBColor(200, 110, 40),
        RGBColor(90, 90, 90),
        RGBColor(180, 60, 110),
    ];
    C[node as usize % C.len()]
}

/// The lanes: a name and the members drawn in it.
fn lanes(t: &Timeline) -> Vec<(String, Vec<usize>)> {
    let n = t.states.len();
    let per = n.div_ceil(MAX_LANES).max(1);
    (0..n)
        .step_by(per)
        .map(|a| {
            let b = (a + per).min(n);
            let name = match b - a {
                1 => t.names[a].clone(),
                _ => format!("{}..{}", t.names[a], t.names[b - 1]),
            };
            (name, (a..b).collect())
        })
        .collect()
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordu32>,
    >,
>;

fn err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

fn cell(x0: f64, x1: f64, row: u32) -> [(f64, SegmentValue<u32>); 2] {
    [
        (x0, SegmentValue::Exact(row)),
        (x1, SegmentValue::Exact(row + 1)),
    ]
}

/// Writes the timeline of `t` as an SVG picture to `path`.
pub fn timeline_svg(t: &Timeline, path: &Path) -> Result<(), PlotError> {
    let mut groups: Vec<&str> = t.leads.iter().map(|l| l.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let lanes = lanes(t);
    let rows = (groups.len() + lanes.len()) as u32;
    let row_h = if lanes.len() > 40 { 9 } else { 18 };
    let height = 140 + rows * row_h;
    let root = SVGBackend::new(path, (1400, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, legend) = root.split_vertically(height - 30);
    let mut labels: Vec<String> = groups.iter().map(|g| format!("leader of {g}")).collect();
    labels.extend(lanes.iter().map(|l| l.0.clone()));
    let row_of = |k: usize| rows - 1 - k as u32;
    let label_of = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(r) if *r < rows => labels[(rows - 1 - r) as usize].clone(),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!(
                "{}: member state as most nodes see it, leaders and faults",
                t.name
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(130)
        .build_cartesian_2d(0f64..t.end.max(0.001), (0u32..rows).into_segmented())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.min(60) as usize)
        .y_label_formatter(&label_of)
        .x_desc("simulated time, s")
        .label_style(("sans-serif", 11))
        .draw()
        .map_err(err)?;
    draw_lanes(&mut chart, t, &lanes, row_of(groups.len()))?;
    for (k, g) in groups.iter().enumerate() {
        draw_leader_lane(&mut chart, t, g, row_of(k))?;
    }
    draw_faults(&mut chart, t, &lanes, rows, row_of(groups.len()))?;
    for (at, _) in &t.marks {
        let line = vec![
            (*at, SegmentValue::Exact(0)),
            (*at, SegmentValue::Exact(rows)),
        ];
        chart
            .draw_series(std::iter::once(PathElement::new(line, RED.stroke_width(2))))
            .map_err(err)?;
    }
    draw_legend(&legend)?;
    root.present().map_err(err)
}

fn draw_lanes(
    chart: &mut Chart<'_, '_>,
    t: &Timeline,
    lanes: &[(String, Vec<usize>)],
    first: u32,
) -> Result<(), PlotError> {
    // Better states first, so that a worse one in a block of nodes stays visible.
    for s in [State::Alive, State::Left, State::Suspect, State::Failed] {
        let color = state_color(s).filled();
        let mut rects = Vec::new();
        for (k, (_, members)) in lanes.iter().enumerate() {
            let row = first - k as u32;
            for &m in members {
                let ch = &t.states[m];
                for (j, &(at, st)) in ch.iter().enumerate() {
                    let until = ch.get(j + 1).map_or(t.end, |c| c.0);
                    if st == s && until > at {
                        rects.push(Rectangle::new(cell(at, until, row), color));
                    }
                }
            }
        }
        chart.draw_series(rects).map_err(err)?;
    }
    // Darker where some nodes see the member otherwise than most do.
    let shade = RGBAColor(0, 0, 0, 0.22).filled();
    let mut rects = Vec::new();
    for (k, (_, members)) in lanes.iter().enumerate() {
        let row = first - k as u32;
        for &m in members {
            for &(a, b) in &t.split[m] {
                rects.push(Rectangle::new(cell(a, b, row), shade));
            }
        }
    }
    chart.draw_series(rects).map_err(err)?;
    Ok(())
}

fn draw_leader_lane(
    chart: &mut Chart<'_, '_>,
    t: &Timeline,
    group: &str,
    row: u32,
) -> Result<(), PlotError> {
    let leads = t.leads.iter().filter(|l| l.group == group);
    for l in leads {
        let name = t
            .names
            .get(l.node as usize)
            .cloned()
            .unwrap_or_else(|| format!("#{}", l.node));
        let rect = Rectangle::new(cell(l.start, l.end, row), leader_color(l.node).filled());
        chart.draw_series(std::iter::once(rect)).map_err(err)?;
        if l.end - l.start > t.end / 40.0 {
            let text = Text::new(
                format!("{name} t{}", l.term % 100_000),
                (l.start, SegmentValue::CenterOf(row)),
                ("sans-serif", 11).into_font().color(&WHITE),
            );
            chart.draw_series(std::iter::once(text)).map_err(err)?;
        }
    }
    Ok(())
}

fn draw_faults(
    chart: &mut Chart<'_, '_>,
    t: &Timeline,
    lanes: &[(String, Vec<usize>)],
    rows: u32,
    first: u32,
) -> Result<(), PlotError> {
    let band = RGBAColor(40, 80, 220, 0.18).filled();
    // A node's own fault is outlined, so that its state stays visible inside.
    let node_band = RGBAColor(120, 0, 160, 1.0).stroke_width(2);
    for f in &t.faults {
        let (lo, hi, style) = match f.node {
            None => (0, rows, band),
            Some(i) => {
                let Some(k) = lanes.iter().position(|l| l.1.contains(&(i as usize))) else {
                    continue;
                };
                let row = first - k as u32;
                (row, row + 1, node_band)
            }
        };
        let rect = Rectangle::new(
            [
                (f.start, SegmentValue::Exact(lo)),
                (f.end, SegmentValue::Exact(hi)),
            ],
            style,
        );
        chart.draw_series(std::iter::once(rect)).map_err(err)?;
        if f.node.is_none() {
            let label = Text::new(
                f.label.clone(),
                (f.start, SegmentValue::Exact(rows)),
                ("sans-serif", 11).into_font().color(&BLUE),
            );
            chart.draw_series(std::iter::once(label)).map_err(err)?;
        }
    }
    Ok(())
}

fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
) -> Result<(), PlotError> {
    let items: [(&str, RGBAColor); 9] = [
        ("alive", state_color(State::Alive).to_rgba()),
        ("suspect", state_color(State::Suspect).to_rgba()),
        ("failed", state_color(State::Failed).to_rgba()),
        ("left", state_color(State::Left).to_rgba()),
        ("unknown", state_color(State::Unknown).to_rgba()),
        ("darker: some nodes disagree", RGBAColor(60, 120, 60, 1.0)),
        ("cut or loss (network)", RGBAColor(40, 80, 220, 0.25)),
        ("crash, pause, slow (outlined)", RGBAColor(120, 0, 160, 1.0)),
        ("checker fired", RED.to_rgba()),
    ];
    let mut x = 150;
    for (label, color) in items {
        area.draw(&Rectangle::new([(x, 8), (x + 14, 22)], color.filled()))
            .map_err(err)?;
        area.draw(&Text::new(label, (x + 18, 9), ("sans-serif", 12)))
            .map_err(err)?;
        x += 30 + 7 * label.len() as i32;
    }
    Ok(())
}
