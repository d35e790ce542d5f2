//! `--mode static` (being written).
use super::report::QuantizeReport;
use super::{CalibrationData, MacTable, QuantizeOptions};
use crate::PassError;
use whittle_ir::Model;

pub fn run(_: &mut Model, _: &QuantizeOptions, _: &MacTable, _: &CalibrationData, _: &mut QuantizeReport) -> Result<(), PassError> {
    Err(PassError::Failed { pass: "quantize".into(), message: "static mode is not implemented yet".into() })
}

pub fn targets(_: &Model, _: &QuantizeOptions) -> Vec<String> {
    Vec::new()
}
