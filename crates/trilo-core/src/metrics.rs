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
    pub janitor_removed: [AtomicU64; 6],
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
