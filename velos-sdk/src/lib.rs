//! velos SDK (being written).
