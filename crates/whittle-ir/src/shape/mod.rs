//! Static shape propagation (being written).
