//! The AWS side of the CLI: the SDK configuration, loaded once per command, and the one-line causes
//! for what commonly goes wrong before DynamoDB or Step Functions even answer: no Region, no
//! credentials, an endpoint that does not answer. `RUST_LOG=debug` shows the SDK's full detail.

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;

/// The AWS variables every command that calls AWS reads, as `--help` text (a macro so `concat!`
/// can put it into each command's help).
macro_rules! aws_env_help {
    () => {
        "  AWS_REGION                 the Region of the Distillery stack (or a region in your AWS profile)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE
                             credentials, by the AWS SDK's usual chain (env, profile, SSO, instance role)
  AWS_ENDPOINT_URL           send every AWS call to this endpoint instead (the local stack's moto)
  RUST_LOG=debug             the SDK's full detail when a call fails"
    };
}
pub(crate) use aws_env_help;

/// The exit codes and environment of the `runs` commands, for their `--help`.
pub const RUNS_HELP: &str = concat!(
    "Exit codes: 0 success; 1 no such run (show); 2 a usage, configuration or AWS error (one line on stderr).\n\n",
    "Environment:\n",
    "  TABLE_NAME                 the run ledger table (or --table)\n",
    aws_env_help!()
);

/// Loads the SDK configuration and checks, before any call is made, that a Region is set and
/// credentials can be loaded, so a missing one is named in one line instead of surfacing as a
/// dispatch failure from deep in the SDK.
pub async fn sdk_config() -> Result<SdkConfig, String> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    if sdk.region().is_none() {
        return Err(
            "no AWS Region is set: set AWS_REGION (e.g. us-east-1) or a region in your AWS profile"
                .into(),
        );
    }
    const HOW: &str = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (after \
                       `aws sso login` for an SSO profile); against the local stack any non-empty \
                       values work";
    let Some(provider) = sdk.credentials_provider() else {
        return Err(format!("no AWS credentials are configured: {HOW}"));
    };
    if let Err(e) = provider.provide_credentials().await {
        tracing::debug!(error = ?e, "loading credentials");
        return Err(format!("no AWS credentials were found: {HOW}"));
    }
    Ok(sdk)
}

/// Where the SDK sends calls, for messages: the endpoint override, or the service in the Region.
pub fn endpoint(sdk: &SdkConfig, service: &str) -> String {
    match sdk.endpoint_url() {
        Some(url) => url.to_string(),
        None => format!(
            "{service} in {}",
            sdk.region().map(|r| r.as_ref()).unwrap_or("?")
        ),
    }
}

/// The one-line cause for a failed call: an unreachable endpoint is named with the variable that
/// sets it; everything else keeps the adapter's message.
pub fn call_error(sdk: &SdkConfig, service: &str, message: &str) -> String {
    if message.contains("cannot reach the endpoint") || message.contains("timed out") {
        format!(
            "cannot reach {}: check AWS_ENDPOINT_URL, AWS_REGION and the network ({message})",
            endpoint(sdk, service)
        )
    } else {
        message.to_string()
    }
}

/// Debug logging on stderr when RUST_LOG is set (off otherwise, so output stays one line).
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}
