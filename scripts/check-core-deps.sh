#!/usr/bin/env bash
# check-core-deps.sh: fails if distillery-core (domain, ports, use cases) depends, directly or through
# another crate, on an AWS SDK, the Lambda runtime or events, an HTTP client or an async runtime. The
# layering is a rule the build checks, not a convention: those belong in distillery-aws.
set -euo pipefail
cd "$(dirname "$0")/.."
banned='^(aws-sdk-.*|aws-config|aws-smithy-.*|aws-types|aws-runtime|lambda_runtime|aws_lambda_events|reqwest|hyper|hyper-util|tokio|async-std|smol)$'
deps=$(cargo tree --locked -p distillery-core -e normal --prefix none --offline 2>/dev/null || cargo tree --locked -p distillery-core -e normal --prefix none)
leaks=$(echo "$deps" | awk '{print $1}' | sort -u | grep -E "$banned" || true)
if [ -n "$leaks" ]; then
  echo "check-core-deps: distillery-core must not depend on: $(echo "$leaks" | tr '\n' ' ')" >&2
  echo "check-core-deps: the path to each: cargo tree -p distillery-core -e normal -i <crate>" >&2
  exit 1
fi
echo "check-core-deps: distillery-core depends on $(echo "$deps" | awk '{print $1}' | sort -u | wc -l) crates, none of them AWS, HTTP or async-runtime crates"
