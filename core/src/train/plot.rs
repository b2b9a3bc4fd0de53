//! Training curves as a self-contained SVG (no plotting dependency): one
//! panel per series, x = step, with axis ticks and labels.

/// One curve: a name and (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend / panel title.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG with one panel per series, stacked vertically.
pub fn svg(title: &str, series: &[Series]) -> String {
    let (w, ph, top) = (720.0, 220.0, 40.0);
    let (left, right, pad) = (70.0, 20.0, 40.0);
    let height = top + series.len() as f64 * (ph + pad) + 10.0;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    for (k, s) in series.iter().enumerate() {
        let y0 = top + k as f64 * (ph + pad);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        out += &format!(
            r##"<text x="{left}" y="{}" font-weight="bold">{}</text><rect x="{left}" y="{}" width="{}" height="{}" fill="none" stroke="#888"/>"##,
            y0 + 12.0,
            esc(&s.name),
            y0 + 18.0,
            w - left - right,
            ph - 30.0
        );
        if pts.is_empty() {
            continue;
        }
        let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in &pts {
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            ymin = ymin.min(y);
            ymax = ymax.max(y);
        }
        if xmax == xmin {
            xmax = xmin + 1.0;
        }
        if ymax == ymin {
            ymax = ymin + 1.0;
        }
        let (px0, px1, py0, py1) = (left, w - right, y0 + ph - 12.0, y0 + 18.0);
        let sx = |x: f64| px0 + (x - xmin) / (xmax - xmin) * (px1 - px0);
        let sy = |y: f64| py0 - (y - ymin) / (ymax - ymin) * (py0 - py1);
        let line: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        out += &format!(
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>"##,
            line.join(" ")
        );
        if pts.len() <= 40 {
            for &(x, y) in &pts {
                out += &format!(
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f77b4"/>"##,
                    sx(x),
                    sy(y)
                );
            }
        }
        for (v, y) in [(ymax, py1), (ymin, py0)] {
            out += &format!(
                r#"<text x="{}" y="{:.1}" text-anchor="end">{v:.4}</text>"#,
                left - 6.0,
                y + 4.0
            );
        }
        for (v, x) in [(xmin, px0), (xmax, px1)] {
            out += &format!(
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{v}</text>"#,
                py0 + 16.0
            );
        }
    }
    out += "</svg>\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_series_and_escapes_names() {
        let s = svg(
            "loss <run>",
            &[
                Series {
                    name: "train loss".into(),
                    points: vec![(1.0, 2.0), (2.0, 1.0)],
                },
                Series {
                    name: "val F1".into(),
                    points: vec![(1.0, 0.5)],
                },
            ],
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("loss &lt;run&gt;"));
    }
}
