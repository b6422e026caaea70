//! e2e tests (being written).
