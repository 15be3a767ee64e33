//! `slack-sink --port N`: a local Slack incoming-webhook sink for the end-to-end harness.
//! Binds 127.0.0.1 (port 0 = a free one) and prints `listening on http://127.0.0.1:PORT` as its first
//! stdout line. The webhook URL to store in the secret is that address plus any path, e.g.
//! `/services/T00000000/B00000000/sinkSecretToken0123456789`. See `distillery_test_support::slack_sink`
//! for the routes (`GET /_sink/messages`, `POST /_sink/mode`).

use std::io::Write;

use clap::Parser;
use distillery_test_support::slack_sink::SlackSink;

#[derive(Parser)]
#[command(about = "Local Slack incoming-webhook sink that records every payload")]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sink = SlackSink::bind(args.port)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind 127.0.0.1:{}: {e}", args.port))?;
    println!("listening on {}", sink.base_url());
    std::io::stdout().flush()?;
    tokio::select! {
        _ = sink.wait() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
