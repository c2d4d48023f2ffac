//! The overview's charts, drawn on the server as SVG with plotters: no JavaScript and nothing
//! fetched from elsewhere, so the console's CSP stays `default-src 'none'`. Each chart sits
//! beside a table of the same figures (the table is what a screen reader and a test read).

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

const SIZE: (u32, u32) = (640, 280);
/// Labels at the chart's own scale; the page shows it at about 500 px wide.
const FONT: (&str, u32) = ("sans-serif", 15);

/// Why a chart could not be drawn (the page then shows only its table).
type Drawn = Result<String, String>;

fn fail<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// One line per series over `x_labels.len()` points (days), with a legend.
pub fn lines(x_labels: &[String], series: &[(String, Vec<i64>)], y_desc: &str) -> Drawn {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let max = series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .max()
            .unwrap_or(0)
            .max(1);
        let last = (x_labels.len() as i32 - 1).max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(0..last, 0..max + max / 10 + 1)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .label_style(FONT)
            .axis_desc_style(FONT)
            .x_label_formatter(&|i| {
                x_labels
                    .get(usize::try_from(*i).unwrap_or(usize::MAX))
                    .cloned()
                    .unwrap_or_default()
            })
            .y_desc(y_desc)
            .draw()
            .map_err(fail)?;
        for (i, (name, values)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(x, y)| (x as i32, *y)),
                    color.stroke_width(2),
                ))
                .map_err(fail)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(FONT)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(fail)?;
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

/// One bar per bucket, labelled.
pub fn bars(labels: &[&str], values: &[i64], y_desc: &str) -> Drawn {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let max = values.iter().copied().max().unwrap_or(0).max(1);
        let n = labels.len() as i32;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0..max + max / 10 + 1)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len())
            .label_style(FONT)
            .axis_desc_style(FONT)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => labels
                    .get(usize::try_from(*i).unwrap_or(usize::MAX))
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .y_desc(y_desc)
            .draw()
            .map_err(fail)?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(RGBColor(11, 92, 173).filled())
                    .margin(6)
                    .data(values.iter().enumerate().map(|(i, v)| (i as i32, *v))),
            )
            .map_err(fail)?;
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_svg_with_labels() {
        let svg = lines(
            &["01.12".into(), "02.12".into()],
            &[("SMS".into(), vec![3, 5]), ("Web".into(), vec![0, 1])],
            "hareket",
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("SMS") && svg.contains("02.12"), "{svg}");
        let svg = bars(&["<1 dk", "<5 dk"], &[4, 0], "iş").unwrap();
        assert!(svg.contains("&lt;1 dk") || svg.contains("<1 dk"), "{svg}");
        assert!(!svg.contains("<script"), "nothing runs");
    }
}
