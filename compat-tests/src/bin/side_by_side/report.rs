//! Results: per-workload statistics, the table, and its JSON form.

use serde::Serialize;

/// Which direction is better for a row's unit.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Lower,
    Higher,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        // (the median of a single sample is that sample)
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Stats { median, min: sorted[0], max: sorted[n - 1], n })
    }
}

impl Stats {
    /// Like [`Stats::of`] but with the mean in `median` (CPU times come in
    /// 10 ms ticks, so a median of per-repetition values says little).
    pub fn mean_of(samples: &[f64]) -> Option<Stats> {
        let mut stats = Stats::of(samples)?;
        stats.median = samples.iter().sum::<f64>() / samples.len() as f64;
        Some(stats)
    }
}

/// One daemon's result for a row.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Measured(Stats),
    /// The daemon does not serve this yet (e.g. 501); shown, not hidden.
    Skipped { reason: String },
    Failed { error: String },
}

impl Outcome {
    pub fn from_samples(samples: &[f64], error: Option<String>) -> Outcome {
        Self::from_stats(Stats::of(samples), error)
    }

    pub fn from_stats(stats: Option<Stats>, error: Option<String>) -> Outcome {
        match (error, stats) {
            (Some(error), _) => Outcome::Failed { error },
            (None, Some(stats)) => Outcome::Measured(stats),
            (None, None) => Outcome::Failed { error: "no samples".into() },
        }
    }

    pub fn median(&self) -> Option<f64> {
        match self {
            Outcome::Measured(s) => Some(s.median),
            _ => None,
        }
    }

    fn cell(&self, width: usize) -> String {
        let text = match self {
            Outcome::Measured(s) => format!("{} / {} / {}", fmt(s.median), fmt(s.min), fmt(s.max)),
            Outcome::Skipped { .. } => "skipped (see below)".to_owned(),
            Outcome::Failed { .. } => "FAILED (see below)".to_owned(),
        };
        format!("{text:>width$}")
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub workload: String,
    pub unit: String,
    pub better: Better,
    pub berthd: Outcome,
    pub dockerd: Outcome,
    /// berthd median / dockerd median.
    pub ratio: Option<f64>,
    /// Repetitions that failed but did not sink the row, and the like.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Row {
    pub fn new(workload: &str, unit: &str, better: Better, berthd: Outcome, dockerd: Outcome) -> Row {
        let ratio = match (berthd.median(), dockerd.median()) {
            (Some(b), Some(d)) if d > 0.0 => Some(b / d),
            _ => None,
        };
        Row { workload: workload.to_owned(), unit: unit.to_owned(), better, berthd, dockerd, ratio, notes: Vec::new() }
    }

    /// Whether berthd did better than dockerd on this row.
    pub fn berthd_wins(&self) -> Option<bool> {
        self.ratio.map(|r| match self.better {
            Better::Lower => r < 1.0,
            Better::Higher => r > 1.0,
        })
    }
}

/// A single reference measurement with no dockerd counterpart (the
/// `ctr run` floor).
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    pub workload: String,
    pub unit: String,
    pub stats: Outcome,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: String,
    pub berthd_version: String,
    pub dockerd_version: String,
    pub containerd_version: String,
    pub docker_cli_version: String,
    pub mode: String,
    pub rows: Vec<Row>,
    pub floors: Vec<Floor>,
}

pub fn fmt(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

impl Report {
    /// The table as Markdown (also readable on a terminal).
    pub fn table(&self) -> String {
        let name_w = self.rows.iter().map(|r| r.workload.len() + r.unit.len() + 7).max().unwrap_or(10).max(20);
        let cell_w = self
            .rows
            .iter()
            .flat_map(|r| [r.berthd.cell(0).len(), r.dockerd.cell(0).len()])
            .max()
            .unwrap_or(10)
            .max(24);
        let mut out = String::new();
        out.push_str(&format!(
            "| {:<name_w$} | {:>cell_w$} | {:>cell_w$} | {:>15} |\n",
            "workload (unit)", "berthd median / min / max", "dockerd median / min / max", "berthd/dockerd"
        ));
        out.push_str(&format!("|{:-<w1$}|{:->w2$}:|{:->w2$}:|{:->16}:|\n", "", "", "", "", w1 = name_w + 2, w2 = cell_w + 1));
        for (i, row) in self.rows.iter().enumerate() {
            let name = format!("{}. {} ({})", i + 1, row.workload, row.unit);
            let ratio = match (row.ratio, row.berthd_wins()) {
                (Some(r), Some(true)) => format!("{} ✓", fmt(r)),
                (Some(r), _) => format!("{} ✗", fmt(r)),
                (None, _) => "—".to_owned(),
            };
            out.push_str(&format!(
                "| {name:<name_w$} | {} | {} | {ratio:>15} |\n",
                row.berthd.cell(cell_w),
                row.dockerd.cell(cell_w)
            ));
        }
        out.push('\n');
        for floor in &self.floors {
            out.push_str(&format!("floor: {} ({}): {}\n", floor.workload, floor.unit, floor.stats.cell(0).trim()));
        }
        out.push_str("✓ = berthd better (lower time/memory/CPU, higher throughput); ✗ = dockerd better or equal.\n");
        let mut notes = Vec::new();
        let mut failures = Vec::new();
        for row in &self.rows {
            for note in &row.notes {
                notes.push(format!("- {}: {}", row.workload, first_lines(note, 6)));
            }
            for (who, outcome) in [("berthd", &row.berthd), ("dockerd", &row.dockerd)] {
                match outcome {
                    Outcome::Skipped { reason } => failures.push(format!("- {}: {who} skipped: {reason}", row.workload)),
                    Outcome::Failed { error } => {
                        failures.push(format!("- {}: {who} FAILED: {}", row.workload, first_lines(error, 6)))
                    }
                    Outcome::Measured(_) => {}
                }
            }
        }
        for (heading, lines) in [("Notes:", notes), ("Not measured, or measured with failures:", failures)] {
            if !lines.is_empty() {
                out.push_str(&format!("\n{heading}\n{}\n", lines.join("\n")));
            }
        }
        out
    }
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join(" | ")
}
