//! AWS adapter: dynamodb (issue 3).
