//! netviews metrics.

pub use bmon_service::telemetry::label;
use bmon_service::telemetry::{Component, MetricDef};

/// Views published.
pub static VIEWS: MetricDef = MetricDef::counter(
    "bmon_netviews_views_total",
    "Typed views published, by network and RPC method.",
    &["network", "method"],
);

/// netviews' metrics.
pub const COMPONENT: Component = Component { name: "netviews", metrics: &[&VIEWS] };
