//! AWS adapter: slack (issue 3).
