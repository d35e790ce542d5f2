//! The inspection report (being written).
