//! One module per subcommand. Each returns `Err(message)` for a usage error.

pub mod demo;
pub mod emulate;
pub mod inspect;
