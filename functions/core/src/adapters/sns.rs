//! AWS adapter: sns (issue 3).
