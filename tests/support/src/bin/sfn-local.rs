//! `sfn-local --port N`: the local Step Functions callback endpoint (SendTaskSuccess,
//! SendTaskFailure, SendTaskHeartbeat on the real awsJson1_0 wire protocol, plus a local control API
//! for the ASL runner). Binds 127.0.0.1 (port 0 = a free one) and prints
//! `listening on http://127.0.0.1:PORT` as its first stdout line. The Lambdas reach it through
//! `AWS_ENDPOINT_URL_SFN`. See `distillery_test_support::sfn_local` for the routes.

use std::io::Write;

use clap::Parser;
use distillery_test_support::sfn_local::SfnLocal;

#[derive(Parser)]
#[command(about = "Local Step Functions task-token endpoint (SendTaskSuccess/Failure/Heartbeat)")]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = SfnLocal::bind(args.port)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind 127.0.0.1:{}: {e}", args.port))?;
    println!("listening on {}", server.base_url());
    std::io::stdout().flush()?;
    tokio::select! {
        _ = server.wait() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
