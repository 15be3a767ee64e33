//! Use cases, one per Lambda, written against `domain` and `ports` only. The step input and output
//! types here are the contract with `statemachine/` (camelCase JSON; samples in `events/`).

pub mod evaluate_model;
pub mod launch_job;
pub mod notify;
pub mod poll_status;
pub mod provision_throughput;
pub mod reconcile;
pub mod retire_run;
pub mod stop_run;
pub mod submit_run;
pub mod track_job;
pub mod validate_dataset;
