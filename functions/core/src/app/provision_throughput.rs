//! Use case: provision_throughput (issue 3).
