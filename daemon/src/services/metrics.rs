//! Counters and histograms for Prometheus, kept in memory and rendered in
//! the text exposition format (version 0.0.4) on scrape. Hand-written: a
//! few maps behind one lock each, no registry crate needed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets in seconds (Prometheus' defaults).
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    /// Cumulative counts per bucket, as exposed.
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// The daemon's metrics. One per process ([`METRICS`]), as the daemon is.
#[derive(Default)]
pub struct Metrics {
    /// route → method → counts and latency: one lock per request, and no
    /// allocation once a route and method have been seen.
    requests: Mutex<BTreeMap<String, BTreeMap<String, RouteMethod>>>,
    /// result (`success`, `failure`) → count.
    pulls: Mutex<BTreeMap<&'static str, u64>>,
}

#[derive(Default, Clone)]
struct RouteMethod {
    /// status → count.
    statuses: BTreeMap<u16, u64>,
    latency: Histogram,
}

pub static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::default);

/// Container counts by state, read at scrape time.
pub struct ContainerStates {
    pub running: u64,
    pub paused: u64,
    pub stopped: u64,
}

impl Metrics {
    /// One API request, by its route template (`/containers/{id}/json`), so
    /// the number of series does not grow with the number of objects.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let methods = match requests.get_mut(route) {
            Some(methods) => methods,
            None => requests.entry(route.to_string()).or_default(),
        };
        let stats = match methods.get_mut(method) {
            Some(stats) => stats,
            None => methods.entry(method.to_string()).or_default(),
        };
        *stats.statuses.entry(status).or_default() += 1;
        stats.latency.observe(elapsed.as_secs_f64());
    }

    pub fn pull(&self, ok: bool) {
        let mut pulls = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
        *pulls.entry(if ok { "success" } else { "failure" }).or_default() += 1;
    }

    /// Everything in the text exposition format. Metric names follow
    /// dockerd's `engine_daemon_*` where dockerd has the metric.
    pub fn render(&self, version: &str, states: Option<&ContainerStates>) -> String {
        let mut out = String::new();
        header(&mut out, "engine_daemon_engine_info", "gauge", "The information related to the engine and the OS it is running on");
        let _ = writeln!(out, "engine_daemon_engine_info{{daemon=\"berthd\",version=\"{}\"}} 1", escape(version));
        if let Some(s) = states {
            header(&mut out, "engine_daemon_container_states_containers", "gauge", "The count of containers in various states");
            for (state, n) in [("paused", s.paused), ("running", s.running), ("stopped", s.stopped)] {
                let _ = writeln!(out, "engine_daemon_container_states_containers{{state=\"{state}\"}} {n}");
            }
        }
        header(&mut out, "berthd_image_pulls_total", "counter", "Image pulls by result");
        let pulls = self.pulls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for result in ["success", "failure"] {
            let _ = writeln!(out, "berthd_image_pulls_total{{result=\"{result}\"}} {}", pulls.get(result).copied().unwrap_or(0));
        }
        // Series ordered by method, then route, then status.
        let mut series: Vec<(String, String, RouteMethod)> = {
            let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            requests
                .iter()
                .flat_map(|(route, methods)| methods.iter().map(|(m, stats)| (m.clone(), route.clone(), stats.clone())))
                .collect()
        };
        series.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        header(&mut out, "berthd_http_requests_total", "counter", "API requests by method, route and status");
        for (method, route, stats) in &series {
            for (status, n) in &stats.statuses {
                let _ = writeln!(
                    out,
                    "berthd_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(method),
                    escape(route)
                );
            }
        }
        header(&mut out, "berthd_http_request_duration_seconds", "histogram", "Time to answer API requests (until the response head)");
        for (method, route, stats) in &series {
            let h = &stats.latency;
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "berthd_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "berthd_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "berthd_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "berthd_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("GET", "/containers/{id}/json", 200, Duration::from_millis(3));
        m.request("GET", "/containers/{id}/json", 404, Duration::from_millis(30));
        m.pull(true);
        let text = m.render("1.0", Some(&ContainerStates { running: 2, paused: 0, stopped: 1 }));
        assert!(text.contains("berthd_http_requests_total{method=\"GET\",route=\"/containers/{id}/json\",status=\"200\"} 1\n"));
        assert!(text.contains("berthd_http_requests_total{method=\"GET\",route=\"/containers/{id}/json\",status=\"404\"} 1\n"));
        assert!(text.contains("_bucket{method=\"GET\",route=\"/containers/{id}/json\",le=\"0.005\"} 1\n"));
        assert!(text.contains("_bucket{method=\"GET\",route=\"/containers/{id}/json\",le=\"0.05\"} 2\n"));
        assert!(text.contains("_bucket{method=\"GET\",route=\"/containers/{id}/json\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("engine_daemon_container_states_containers{state=\"running\"} 2\n"));
        assert!(text.contains("berthd_image_pulls_total{result=\"success\"} 1\n"));
        assert!(text.contains("berthd_image_pulls_total{result=\"failure\"} 0\n"));
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
