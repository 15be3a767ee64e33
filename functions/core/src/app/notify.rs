//! Use case: notify (issue 3).
