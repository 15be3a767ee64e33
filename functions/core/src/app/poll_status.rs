//! Use case: poll_status (issue 3).
