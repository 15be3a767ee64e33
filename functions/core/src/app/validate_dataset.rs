//! Use case: validate_dataset (issue 3).
