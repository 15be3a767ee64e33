//! Use case: launch_job (issue 3).
