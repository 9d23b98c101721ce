//! A PNG bar chart of the berthd/dockerd ratios, drawn by hand (plotters
//! needs system font libraries for any text). Rows are numbered like the
//! table; bars grow from 1.0 on a log2 axis (1/8 … 8), green where berthd
//! is better, red where dockerd is; the ratio is written at each bar's end.

use std::path::Path;

use anyhow::Result;

use crate::report::Row;

const WIDTH: usize = 1000;
const ROW_H: usize = 26;
const TOP: usize = 16;
const BOTTOM: usize = 40;
const PLOT_LEFT: usize = 90;
const PLOT_RIGHT: usize = 960;
const LOG2_SPAN: f64 = 3.0; // 1/8 … 8
const SCALE: usize = 3; // font pixel size

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [215, 215, 215];
const GREEN: [u8; 3] = [46, 160, 67];
const RED: [u8; 3] = [207, 34, 46];
const GREY: [u8; 3] = [150, 150, 150];

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Canvas {
        Canvas { w, h, px: WHITE.repeat(w * h) }
    }

    fn rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, color: [u8; 3]) {
        for y in y0.min(self.h)..y1.min(self.h) {
            for x in x0.min(self.w)..x1.min(self.w) {
                let i = (y * self.w + x) * 3;
                self.px[i..i + 3].copy_from_slice(&color);
            }
        }
    }

    /// Draws `text` (digits, '.', 'x', '#', '/') with its top-left at (x, y);
    /// returns the width used.
    fn text(&mut self, x: usize, y: usize, text: &str, color: [u8; 3]) -> usize {
        let mut cx = x;
        for ch in text.chars() {
            if let Some(rows) = glyph(ch) {
                for (ry, bits) in rows.iter().enumerate() {
                    for rx in 0..3 {
                        if bits & (0b100 >> rx) != 0 {
                            let px = cx + rx * SCALE;
                            let py = y + ry * SCALE;
                            self.rect(px, py, px + SCALE, py + SCALE, color);
                        }
                    }
                }
            }
            cx += 4 * SCALE;
        }
        cx - x
    }

    fn text_width(text: &str) -> usize {
        text.chars().count() * 4 * SCALE
    }
}

/// A 3×5 font for the few characters the chart writes.
fn glyph(ch: char) -> Option<[u8; 5]> {
    Some(match ch {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b001, 0b001, 0b001],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        'x' => [0b000, 0b101, 0b010, 0b101, 0b000],
        '#' => [0b101, 0b111, 0b101, 0b111, 0b101],
        '/' => [0b001, 0b001, 0b010, 0b100, 0b100],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        _ => return None,
    })
}

fn x_of(ratio: f64) -> usize {
    let l = ratio.log2().clamp(-LOG2_SPAN, LOG2_SPAN);
    let mid = (PLOT_LEFT + PLOT_RIGHT) as f64 / 2.0;
    let half = (PLOT_RIGHT - PLOT_LEFT) as f64 / 2.0;
    (mid + l / LOG2_SPAN * half).round() as usize
}

pub fn write_png(rows: &[Row], path: &Path) -> Result<()> {
    let h = TOP + rows.len().max(1) * ROW_H + BOTTOM;
    let mut c = Canvas::new(WIDTH, h);
    let plot_bottom = TOP + rows.len() * ROW_H;
    // Grid and axis labels at 1/8 … 8.
    for k in -3i32..=3 {
        let ratio = 2f64.powi(k);
        let x = x_of(ratio);
        let color = if k == 0 { BLACK } else { GRID };
        c.rect(x.saturating_sub(usize::from(k == 0)), TOP / 2, x + 1, plot_bottom + 4, color);
        let label = if k < 0 { format!("1/{}", 1 << -k) } else { format!("{}", 1 << k) };
        let lw = Canvas::text_width(&label);
        c.text(x.saturating_sub(lw / 2), plot_bottom + 12, &label, BLACK);
    }
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + i * ROW_H;
        c.text(10, y + (ROW_H - 5 * SCALE) / 2, &format!("#{}", i + 1), BLACK);
        let (y0, y1) = (y + 4, y + ROW_H - 4);
        // A log axis has no place for a ratio at or below 0 (a difference
        // of medians, such as networking's share, can be negative).
        let Some(ratio) = row.ratio.filter(|r| *r > 0.0) else {
            // Not measured on one side, or no ratio to draw: a grey dash at 1.0.
            let x = x_of(1.0);
            c.rect(x.saturating_sub(12), y + ROW_H / 2 - 2, x + 12, y + ROW_H / 2 + 2, GREY);
            continue;
        };
        let color = if row.berthd_wins() == Some(true) { GREEN } else { RED };
        let (x1, x2) = (x_of(1.0), x_of(ratio));
        let (lo, hi) = if x2 < x1 { (x2, x1) } else { (x1, x2 + 1) };
        c.rect(lo, y0, hi.max(lo + 2), y1, color);
        let label = if ratio >= 10.0 { format!("{ratio:.0}x") } else { format!("{ratio:.2}x") };
        let lw = Canvas::text_width(&label);
        let ty = y + (ROW_H - 5 * SCALE) / 2;
        if x2 >= x1 {
            let tx = (hi + 6).min(WIDTH - lw - 2);
            c.text(tx, ty, &label, BLACK);
        } else {
            if lo >= PLOT_LEFT - 40 + lw + 6 {
                c.text(lo - lw - 6, ty, &label, BLACK);
            } else {
                // No room left of the bar: write inside it.
                c.text(lo + 4, ty, &label, WHITE);
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, WIDTH as u32, h as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&c.px)?;
    writer.finish()?;
    Ok(())
}
