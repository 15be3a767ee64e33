//! Bedrock simulator (issue 3).
