//! Calibration statistics handed in by the caller, and the methods that turn them into
//! activation ranges.
use std::collections::BTreeMap;

/// Equal-width histogram bins over `[lo, lo + counts.len()·width]`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Histogram {
    pub lo: f64,
    pub width: f64,
    pub counts: Vec<u64>,
}

/// What calibration saw of one value.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ValueStats {
    pub min: f64,
    pub max: f64,
    pub histogram: Option<Histogram>,
}

/// Statistics by value name.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CalibrationData {
    pub values: BTreeMap<String, ValueStats>,
}
