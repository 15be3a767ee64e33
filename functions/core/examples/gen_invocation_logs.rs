//! Writes realistic Bedrock invocation logs into a directory, in Bedrock's layout, for the
//! `logs preview` benchmark (scripts/bench-logs-preview.sh).
//!
//! `cargo run --release -p distillery-core --example gen_invocation_logs -- DIR [MEGABYTES] [SEED]`
//!
//! MEGABYTES (default 64) is the gzipped size of the log files to write. What the logs hold:
//! `distillery_core::testing::invocation_logs`.

use std::path::PathBuf;
use std::process::ExitCode;

use distillery_core::testing::invocation_logs::{write_invocation_logs, LogGenOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: gen_invocation_logs DIR [MEGABYTES] [SEED]");
        return ExitCode::from(2);
    };
    let megabytes: u64 = match args.get(1).map(|s| s.parse()) {
        None => 64,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("gen_invocation_logs: MEGABYTES must be a whole number");
            return ExitCode::from(2);
        }
    };
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7);
    let options = LogGenOptions {
        target_bytes: megabytes * 1_000_000,
        records_per_file: 500,
        files_per_hour: 4,
        seed,
        ..Default::default()
    };
    match write_invocation_logs(&dir, &options) {
        Ok(g) => {
            println!(
                "{} log files, {} records, {} bytes gzipped, {} hour folders in {}",
                g.files,
                g.records,
                g.bytes,
                g.hours,
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_invocation_logs: {}: {e}", dir.display());
            ExitCode::from(2)
        }
    }
}
