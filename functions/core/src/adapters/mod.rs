//! Adapters: one AWS implementation per port, in-memory ones for tests, and the Lambda glue.

pub mod bedrock;
pub mod dynamodb;
pub mod lambda;
pub mod memory;
pub mod s3;
pub mod sdk_error;
pub mod secrets;
pub mod sfn;
pub mod slack;
pub mod sns;
