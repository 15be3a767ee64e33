//! AWS adapter: secrets (issue 3).
