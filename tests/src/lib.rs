//! Cross-crate test support: the shared vectors every language's suite runs.

pub mod vectors;
