//! AWS adapter: bedrock (issue 3).
