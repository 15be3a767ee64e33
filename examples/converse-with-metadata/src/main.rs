//! `converse-with-metadata`: one Converse call tagged with requestMetadata.
//!
//! ```text
//! cargo run -p converse-with-metadata -- --prompt "How do I reset my password?" \
//!     --metadata app=support-bot --metadata tenant=acme
//! ```
//! Credentials and Region come from the usual AWS configuration; `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`
//! points it at another endpoint (the local stack's simulator).

use clap::Parser;
use converse_with_metadata::{converse_tagged, parse_metadata};

#[derive(Parser)]
#[command(
    about = "Calls Bedrock Converse with requestMetadata, so the call's invocation log can be selected for distillation"
)]
struct Args {
    /// The model (or inference profile) to call: your application's model, usually the teacher.
    #[arg(long, default_value = "amazon.nova-pro-v1:0")]
    model_id: String,
    /// The user's prompt.
    #[arg(long)]
    prompt: String,
    /// A request metadata pair, key=value (repeat up to 16 times).
    #[arg(long = "metadata", default_values_t = ["app=support-bot".to_string(), "tenant=acme".to_string()])]
    metadata: Vec<String>,
    /// maxTokens for the answer.
    #[arg(long, default_value_t = 512)]
    max_tokens: i32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let metadata = parse_metadata(&args.metadata)?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_bedrockruntime::Client::new(&config);
    let answer = converse_tagged(
        &client,
        &args.model_id,
        &args.prompt,
        &metadata,
        args.max_tokens,
    )
    .await?;
    println!("{answer}");
    Ok(())
}
