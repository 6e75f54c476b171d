//! Typed metric declarations: each component lists what it can export in one place.
//!
//! A component's `telemetry` module declares each metric once, as a [`MetricDef`] static: name,
//! help, type, unit, label names and, for histograms, explicit buckets. Code records through the
//! def (`DEF.counter(labels).increment(1)`), never through the `metrics` macros (clippy's
//! `disallowed-macros` forbids them outside this module), so every exported series has a
//! declaration, and `bmon metrics list` prints them all. The model is Vector's internal events.

#![allow(clippy::disallowed_macros)] // The one place the `metrics` macros are called.

use serde::Serialize;

/// Buckets for sub-second latencies, seconds (the same as [`crate::LATENCY_BUCKETS`]).
pub const LATENCY: &[f64] = crate::LATENCY_BUCKETS;

/// A label for [`MetricDef::with_counter`] and its kin.
pub fn label(key: &'static str, value: impl Into<metrics::SharedString>) -> metrics::Label {
    metrics::Label::new(key, value)
}

/// A metric's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Samples counted into buckets.
    Histogram,
}

/// One metric bmon can export.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MetricDef {
    /// Full name, e.g. `bmon_processor_records_total`.
    pub name: &'static str,
    /// One line on what it counts or measures.
    pub help: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Its unit (`seconds`, `bytes`, or empty for a count).
    pub unit: &'static str,
    /// The label names its series carry.
    pub labels: &'static [&'static str],
    /// Bucket bounds, for histograms (empty: the recorder's default for `_seconds`).
    pub buckets: &'static [f64],
}

impl MetricDef {
    /// A counter declaration.
    pub const fn counter(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> MetricDef {
        MetricDef { name, help, kind: Kind::Counter, unit: "", labels, buckets: &[] }
    }

    /// A gauge declaration.
    pub const fn gauge(
        name: &'static str,
        help: &'static str,
        unit: &'static str,
        labels: &'static [&'static str],
    ) -> MetricDef {
        MetricDef { name, help, kind: Kind::Gauge, unit, labels, buckets: &[] }
    }

    /// A histogram declaration, in seconds unless `unit` says otherwise.
    pub const fn histogram(
        name: &'static str,
        help: &'static str,
        unit: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> MetricDef {
        MetricDef { name, help, kind: Kind::Histogram, unit, labels, buckets }
    }

    /// The counter with these label values (in the order of [`MetricDef::labels`]).
    pub fn with_counter(&self, labels: impl Into<Vec<metrics::Label>>) -> metrics::Counter {
        debug_assert_eq!(self.kind, Kind::Counter, "{} is not a counter", self.name);
        metrics::counter!(self.name, labels.into())
    }

    /// The gauge with these label values.
    pub fn with_gauge(&self, labels: impl Into<Vec<metrics::Label>>) -> metrics::Gauge {
        debug_assert_eq!(self.kind, Kind::Gauge, "{} is not a gauge", self.name);
        metrics::gauge!(self.name, labels.into())
    }

    /// The histogram with these label values.
    pub fn with_histogram(&self, labels: impl Into<Vec<metrics::Label>>) -> metrics::Histogram {
        debug_assert_eq!(self.kind, Kind::Histogram, "{} is not a histogram", self.name);
        metrics::histogram!(self.name, labels.into())
    }

    /// The series without labels, for a counter.
    pub fn counter0(&self) -> metrics::Counter {
        self.with_counter(Vec::new())
    }

    /// The series without labels, for a gauge.
    pub fn gauge0(&self) -> metrics::Gauge {
        self.with_gauge(Vec::new())
    }

    /// The series without labels, for a histogram.
    pub fn histogram0(&self) -> metrics::Histogram {
        self.with_histogram(Vec::new())
    }
}

/// One component's declarations.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    /// Its name, e.g. `runtime`, `propagation`, `producer`.
    pub name: &'static str,
    /// Everything it can export.
    pub metrics: &'static [&'static MetricDef],
}

/// Registers each metric's help text with the installed recorder (`# HELP` lines).
pub fn describe(components: &[Component]) {
    for c in components {
        for m in c.metrics {
            let unit = match m.unit {
                "seconds" => Some(metrics::Unit::Seconds),
                "bytes" => Some(metrics::Unit::Bytes),
                _ => None,
            };
            match (m.kind, unit) {
                (Kind::Counter, Some(u)) => metrics::describe_counter!(m.name, u, m.help),
                (Kind::Counter, None) => metrics::describe_counter!(m.name, m.help),
                (Kind::Gauge, Some(u)) => metrics::describe_gauge!(m.name, u, m.help),
                (Kind::Gauge, None) => metrics::describe_gauge!(m.name, m.help),
                (Kind::Histogram, Some(u)) => metrics::describe_histogram!(m.name, u, m.help),
                (Kind::Histogram, None) => metrics::describe_histogram!(m.name, m.help),
            }
        }
    }
}

/// The explicit buckets of every histogram of `components`, for [`crate::install_recorder`].
pub fn buckets(components: &[Component]) -> Vec<(&'static str, &'static [f64])> {
    components
        .iter()
        .flat_map(|c| c.metrics.iter())
        .filter(|m| m.kind == Kind::Histogram && !m.buckets.is_empty())
        .map(|m| (m.name, m.buckets))
        .collect()
}
