//! One module per subcommand. Each returns `Err(message)` for a usage error.

pub mod keys;
pub mod rotate_key;
pub mod serve;
pub mod token;
