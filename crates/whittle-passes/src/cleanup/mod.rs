//! Clean-up passes (being written).
