//! What the services count for `/metrics` (issue 16): token issuance and refresh
//! outcomes, gateway decisions by refusal kind, and the gateway cache's hits. Counters
//! only, no labels that name a token, account, app or site.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct CoreMetrics {
    pub code_exchanges: AtomicU64,
    pub refresh_rotated: AtomicU64,
    pub refresh_returned_current: AtomicU64,
    pub refresh_reuse_detected: AtomicU64,
    pub refresh_refused: AtomicU64,
    pub gateway_admitted: AtomicU64,
    pub gateway_cache_hits: AtomicU64,
    pub gateway_cache_misses: AtomicU64,
    /// Refusals by [`trilo_protocol::gateway::GatewayRefusal::reason`].
    gateway_refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Rows the janitor removed, by kind ([`crate::services::janitor::SWEEP_KINDS`]).
    pub janitor_removed: [AtomicU64; 8],
}

/// Adds one.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl CoreMetrics {
    pub fn gateway_refused(&self, reason: &'static str) {
        let mut refused = self
            .gateway_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *refused.entry(reason).or_insert(0) += 1;
    }

    /// The counters in the Prometheus text format (0.0.4).
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            out,
            "trilo_code_exchanges_total",
            "Authorization codes exchanged for tokens.",
            &[("", get(&self.code_exchanges))],
        );
        counter(
            out,
            "trilo_refresh_total",
            "Refresh-token grants by outcome.",
            &[
                ("outcome=\"rotated\"", get(&self.refresh_rotated)),
                (
                    "outcome=\"returned_current\"",
                    get(&self.refresh_returned_current),
                ),
                (
                    "outcome=\"reuse_detected\"",
                    get(&self.refresh_reuse_detected),
                ),
                ("outcome=\"refused\"", get(&self.refresh_refused)),
            ],
        );
        let refused: Vec<(String, u64)> = self
            .gateway_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(reason, n)| (format!("decision=\"refused\",reason=\"{reason}\""), *n))
            .collect();
        let mut decisions: Vec<(&str, u64)> = vec![(
            "decision=\"admitted\",reason=\"\"",
            get(&self.gateway_admitted),
        )];
        decisions.extend(refused.iter().map(|(l, n)| (l.as_str(), *n)));
        counter(
            out,
            "trilo_gateway_decisions_total",
            "Gateway calls admitted, and refused by kind.",
            &decisions,
        );
        counter(
            out,
            "trilo_gateway_cache_total",
            "Gateway standings found in the cache, or checked against the store.",
            &[
                ("result=\"hit\"", get(&self.gateway_cache_hits)),
                ("result=\"miss\"", get(&self.gateway_cache_misses)),
            ],
        );
        let removed: Vec<(String, u64)> = crate::services::janitor::SWEEP_KINDS
            .iter()
            .zip(&self.janitor_removed)
            .map(|(kind, n)| (format!("kind=\"{kind}\""), get(n)))
            .collect();
        let removed: Vec<(&str, u64)> = removed.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        counter(
            out,
            "trilo_janitor_removed_total",
            "Rows the janitor removed, by kind.",
            &removed,
        );
    }
}

/// A Prometheus histogram with fixed bucket bounds, updated without a lock.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Non-cumulative: observations at most `bounds[i]` and above the one before; the
    /// last slot holds those above every bound.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// In millionths, so an atomic integer can hold it.
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let slot = self
            .bounds
            .iter()
            .position(|le| value <= *le)
            .unwrap_or(self.bounds.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        // Saturating float-to-int cast: a negative or absurd value cannot wrap the sum.
        self.sum_micros
            .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (le, n) in self.bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The store's grouped commits (SQLite's group commit of the token endpoint's writes,
/// PostgreSQL's refresh batches): how long each took and how many writes it carried.
#[derive(Debug)]
pub struct CommitStats {
    pub duration_seconds: Histogram,
    pub group_size: Histogram,
    /// Groups whose writes ran a second time, each in a savepoint of its own, because one
    /// of them failed (SQLite's committer; a PostgreSQL batch never reruns).
    pub reruns: AtomicU64,
}

impl Default for CommitStats {
    fn default() -> Self {
        Self {
            duration_seconds: Histogram::new(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            group_size: Histogram::new(&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            reruns: AtomicU64::new(0),
        }
    }
}

impl CommitStats {
    /// One committed group of `size` writes that took `took`.
    pub fn record(&self, took: std::time::Duration, size: usize) {
        self.duration_seconds.observe(took.as_secs_f64());
        self.group_size.observe(size as f64);
    }

    /// One group run again, each write in a savepoint of its own.
    pub fn record_rerun(&self) {
        bump(&self.reruns);
    }

    pub fn render(&self, out: &mut String) {
        self.duration_seconds.render(
            out,
            "trilo_store_commit_duration_seconds",
            "Time of each grouped store commit (its writes and the durable commit).",
        );
        self.group_size.render(
            out,
            "trilo_store_commit_group_size",
            "Writes carried by each grouped store commit.",
        );
        counter(
            out,
            "trilo_store_commit_reruns_total",
            "Grouped store commits whose writes ran again, each alone, because one failed.",
            &[("", self.reruns.load(Ordering::Relaxed))],
        );
    }
}

/// One counter family: `# HELP`, `# TYPE` and a sample per label set (`""` for none).
pub fn counter(out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets_a_sum_and_a_count() {
        let stats = CommitStats::default();
        stats.record(std::time::Duration::from_micros(800), 3);
        stats.record(std::time::Duration::from_millis(3), 40);
        stats.record(std::time::Duration::from_secs(2), 1);
        stats.record_rerun();
        let mut out = String::new();
        stats.render(&mut out);
        for line in [
            "# TYPE trilo_store_commit_duration_seconds histogram",
            "trilo_store_commit_duration_seconds_bucket{le=\"0.0005\"} 0",
            "trilo_store_commit_duration_seconds_bucket{le=\"0.001\"} 1",
            "trilo_store_commit_duration_seconds_bucket{le=\"0.005\"} 2",
            "trilo_store_commit_duration_seconds_bucket{le=\"1\"} 2",
            "trilo_store_commit_duration_seconds_bucket{le=\"+Inf\"} 3",
            "trilo_store_commit_duration_seconds_sum 2.0038",
            "trilo_store_commit_duration_seconds_count 3",
            "trilo_store_commit_group_size_bucket{le=\"1\"} 1",
            "trilo_store_commit_group_size_bucket{le=\"4\"} 2",
            "trilo_store_commit_group_size_bucket{le=\"32\"} 2",
            "trilo_store_commit_group_size_bucket{le=\"64\"} 3",
            "trilo_store_commit_group_size_sum 44",
            "# TYPE trilo_store_commit_reruns_total counter",
            "trilo_store_commit_reruns_total 1",
        ] {
            assert!(out.contains(&format!("{line}\n")), "{line} in\n{out}");
        }
    }

    #[test]
    fn counters_render_in_the_text_format() {
        let m = CoreMetrics::default();
        bump(&m.code_exchanges);
        bump(&m.refresh_rotated);
        m.gateway_refused("missing_scope");
        m.gateway_refused("missing_scope");
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains(
                "# TYPE trilo_code_exchanges_total counter\ntrilo_code_exchanges_total 1\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("trilo_refresh_total{outcome=\"rotated\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "trilo_gateway_decisions_total{decision=\"refused\",reason=\"missing_scope\"} 2\n"
            ),
            "{out}"
        );
    }
}
