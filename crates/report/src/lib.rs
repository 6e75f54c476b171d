//! The replay report: what `bmon replay` found over a time range, for an investigator.
//!
//! - [`model`]: the data, which is also the JSON file (`--out report.json`);
//! - [`build`]: a [`ReportBuilder`] fed the replay's records one at a time (pure);
//! - [`plots`]: plotters' SVG backend, one function per plot;
//! - [`html`]: one self-contained page (`--out report.html`): inline CSS and SVG, no script,
//!   nothing fetched, so it opens offline and can be mailed.

pub mod build;
pub mod html;
pub mod model;
pub mod plots;

pub use build::ReportBuilder;
pub use model::Report;

#[cfg(test)]
mod tests;
