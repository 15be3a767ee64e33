//! Adapters: one AWS implementation per port, in-memory ones for tests, and the Lambda glue.

pub mod memory;
