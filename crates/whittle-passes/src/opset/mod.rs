//! Opset conversion (being written).
