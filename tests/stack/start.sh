#!/usr/bin/env bash
# Starts the local stack on free 127.0.0.1 ports and records it in $DISTILLERY_STACK_DIR
# (default .local/stack): moto server (S3, DynamoDB, SNS, SQS, EventBridge, Secrets Manager), the
# Bedrock simulator (publishing its job state-change events to moto's EventBridge), the Slack webhook
# sink, sfn-local (the Step Functions task-token endpoint the Lambdas reach through
# AWS_ENDPOINT_URL_SFN and the ASL runner waits on), `cargo lambda watch` serving the six real Lambda
# binaries, and job-event-relay (the job-event rule's SQS queue -> the status-poller Lambda, as a rule
# with a Lambda target delivers). Each process runs in its own session; its PID (= process group id)
# goes in <name>.pid so
# stop.sh stops exactly what this script started. Logs: <name>.log. Description: stack.json.
#
# Tunables (environment): BEDROCK_SIM_PHASE_MS, BEDROCK_SIM_PT_MS (simulated durations),
# POLL_INITIAL_WAIT_SECONDS, POLL_MAX_WAIT_SECONDS, MAX_JOB_DURATION_SECONDS (Lambda settings).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
STATE=${DISTILLERY_STACK_DIR:-$ROOT/.local/stack}
mkdir -p "$STATE"

log() { echo "stack: $*" >&2; }

for f in "$STATE"/*.pid; do
  [ -e "$f" ] || continue
  if kill -0 "$(cat "$f")" 2>/dev/null; then
    log "already running ($(basename "$f" .pid), PID $(cat "$f")); run tests/stack/stop.sh first"
    exit 1
  fi
  rm -f "$f"
done
# A previous start's files must never be read as this start's: its address files (*.out) above all,
# which a new process only truncates some time after it is launched.
rm -f "$STATE"/*.out "$STATE"/*.log "$STATE"/warmup-*.json "$STATE/lambda.env" \
  "$STATE/resources.json" "$STATE/stack.json" "$STATE/job-event-relay.jsonl"

on_error() {
  log "start failed; stopping what was started (logs kept in $STATE)"
  "$ROOT/tests/stack/stop.sh" >&2 || true
}
trap on_error ERR

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_bg NAME CMD...: runs CMD in a new session (so stop.sh can end it and its children as a group),
# stdout to NAME.out, stderr to NAME.log. The files are removed here, synchronously, before the
# process is launched: the redirections happen in the child, so a file left from an earlier start
# could otherwise be read (a stale address) before the child truncates it.
start_bg() {
  local name=$1; shift
  rm -f "$STATE/$name.out" "$STATE/$name.log"
  setsid "$@" >"$STATE/$name.out" 2>"$STATE/$name.log" </dev/null &
  echo $! >"$STATE/$name.pid"
}

# listening_url NAME: waits for the `listening on http://...` line a server prints first.
listening_url() {
  local name=$1 deadline=$((SECONDS + 30)) line
  while [ $SECONDS -lt $deadline ]; do
    line=$(head -n1 "$STATE/$name.out" 2>/dev/null || true)
    if [[ $line == "listening on "* ]]; then echo "${line#listening on }"; return 0; fi
    kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null || { log "$name exited: $(tail -n5 "$STATE/$name.log")"; return 1; }
    sleep 0.1
  done
  log "$name did not print its address within 30 s (see $STATE/$name.log)"; return 1
}

wait_http() {
  local url=$1 name=$2 deadline=$((SECONDS + 60))
  until curl -s -o /dev/null "$url"; do
    [ $SECONDS -lt $deadline ] || { log "$name is not answering at $url (see $STATE/$name.log)"; return 1; }
    kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null || { log "$name exited: $(tail -n5 "$STATE/$name.log")"; return 1; }
    sleep 0.2
  done
}

FUNCTIONS=(dataset-validator job-launcher status-poller throughput-provisioner notifier model-evaluator)

log "building the simulator, the sink, sfn-local, the harness and the five Lambdas"
pkgs=(-p bedrock-sim -p distillery-test-support -p distillery-local-stack)
for f in "${FUNCTIONS[@]}"; do pkgs+=(-p "$f"); done
cargo build --locked --quiet "${pkgs[@]}" --bins

port=$(free_port)
MOTO_URL="http://127.0.0.1:$port"
# DynamoDB calls serialised so conditional writes are atomic as in AWS (tests/support/moto_server.py).
start_bg moto "$ROOT/.venv/bin/python" "$ROOT/tests/support/moto_server.py" 127.0.0.1 "$port"
wait_http "$MOTO_URL/moto-api/" moto
log "moto        $MOTO_URL"

# --events-url: each job status change is published as Bedrock's state-change event (PutEvents, default
# bus); the job-event rule stack-setup creates routes Distillery's to the relay's queue.
# --s3-url: a native invocation-log job's logs are read from moto's S3 and filtered as Bedrock would,
# and the job fails when fewer than 100 records match.
start_bg bedrock-sim "$ROOT/target/debug/bedrock-sim" --port 0 \
  --phase-ms "${BEDROCK_SIM_PHASE_MS:-1000}" --pt-ms "${BEDROCK_SIM_PT_MS:-1000}" --stop-ms 300 \
  --events-url "$MOTO_URL" --s3-url "$MOTO_URL"
SIM_URL=$(listening_url bedrock-sim)
wait_http "$SIM_URL/" bedrock-sim
log "bedrock-sim $SIM_URL"

start_bg slack-sink "$ROOT/target/debug/slack-sink" --port 0
SINK_URL=$(listening_url slack-sink)
wait_http "$SINK_URL/" slack-sink
log "slack-sink  $SINK_URL"

# One server for every execution of this stack: tokens are registered by the runner per state entry.
start_bg sfn-local "$ROOT/target/debug/sfn-local" --port 0
SFN_URL=$(listening_url sfn-local)
wait_http "$SFN_URL/" sfn-local
log "sfn-local   $SFN_URL"

"$ROOT/target/debug/stack-setup" --moto "$MOTO_URL" \
  --slack-webhook-url "$SINK_URL/services/T0LOCAL00/B0LOCAL00/localSinkToken000000000000" \
  --out "$STATE/resources.json" >/dev/null
res() { jq -r ".$1" "$STATE/resources.json"; }

# The Lambdas' environment, as the SAM template sets it in AWS, aimed at the local services (the
# simulator serves both Bedrock endpoints: the control plane and the runtime's Converse).
# Deliberately more permissive than the template's defaults, so every e2e test can ask for what it
# exercises: provisioning on, every metadata override open (ALLOW_PROVISIONING / ALLOW_OVERRIDES,
# overridable from the caller's environment like SERVING_MODE), and the Slack webhook may be the
# local sink rather than https://hooks.slack.com/ (SLACK_ALLOW_ANY_URL_FOR_TESTS: set here only).
cat >"$STATE/lambda.env" <<ENV
AWS_ENDPOINT_URL=$MOTO_URL
AWS_ENDPOINT_URL_BEDROCK=$SIM_URL
AWS_ENDPOINT_URL_BEDROCK_RUNTIME=$SIM_URL
AWS_ENDPOINT_URL_SFN=$SFN_URL
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
RUST_LOG=info
TABLE_NAME=$(res tableName)
UPLOAD_PREFIX=$(res uploadPrefix)
UPLOAD_SUFFIX=$(res uploadSuffix)
REPORT_PREFIX=reports/
SNAPSHOT_PREFIX=runs/
SERVING_MODE=${SERVING_MODE:-none}
QUALITY_GATE=${QUALITY_GATE:-off}
MODEL_UNITS=1
COMMITMENT=None
ALLOW_PROVISIONING=${ALLOW_PROVISIONING:-true}
ALLOW_OVERRIDES=${ALLOW_OVERRIDES:-all}
BEDROCK_ROLE_ARN=arn:aws:iam::123456789012:role/distillery-bedrock-distillation
CUSTOM_MODEL_KMS_KEY_ID=arn:aws:kms:us-east-1:123456789012:key/0d15711e-0000-4000-8000-00000000da7a
OUTPUT_PREFIX=output/
POLL_INITIAL_WAIT_SECONDS=${POLL_INITIAL_WAIT_SECONDS:-1}
POLL_MAX_WAIT_SECONDS=${POLL_MAX_WAIT_SECONDS:-2}
MAX_JOB_DURATION_SECONDS=${MAX_JOB_DURATION_SECONDS:-300}
RECONCILE_QUIET_PERIOD_SECONDS=${RECONCILE_QUIET_PERIOD_SECONDS:-2}
TOPIC_ARN=$(res topicArn)
SLACK_SECRET_ARN=$(res slackSecretArn)
SLACK_TIMEOUT_MS=1000
SLACK_MAX_ATTEMPTS=2
INVOCATION_LOGS_S3_URI=$(res invocationLogsUri)
LOG_RUN_MODE=${LOG_RUN_MODE:-curated}
SCHEDULE_BUCKET=$(res bucket)
SLACK_ALLOW_ANY_URL_FOR_TESTS=true
QUOTA_RETRY_SECONDS=${QUOTA_RETRY_SECONDS:-2}
MAX_QUEUE_HOURS=${MAX_QUEUE_HOURS:-0.25}
ENV

port=$(free_port)
LAMBDA_URL="http://127.0.0.1:$port"
# --ignore-changes: edits elsewhere in the shared tree must not rebuild a function mid-run.
start_bg lambda "$ROOT/.venv/bin/cargo-lambda" lambda watch \
  --invoke-address 127.0.0.1 --invoke-port "$port" --ignore-changes --concurrency 2 \
  --env-file "$STATE/lambda.env"
wait_http "$LAMBDA_URL/" lambda
log "lambdas     $LAMBDA_URL (cargo lambda watch)"

# The same functions with the template's guardrails on: no throughput bought (AllowProvisioning=false)
# and at most 2 distillation jobs at once (MaxConcurrentJobs=2), so end-to-end tests run the real
# state machine against a stack that refuses what this one allows (tests/stack/tests/e2e/security.rs)
# and queues what this one launches at once (tests/stack/tests/e2e/burst.rs). Its functions start on
# their first invocation. The job-slot item in the ledger is used only by these functions.
grep -v -e '^ALLOW_PROVISIONING=' -e '^MAX_CONCURRENT_JOBS=' "$STATE/lambda.env" >"$STATE/lambda-guarded.env"
printf 'ALLOW_PROVISIONING=false\nMAX_CONCURRENT_JOBS=%s\n' "${GUARDED_MAX_CONCURRENT_JOBS:-2}" >>"$STATE/lambda-guarded.env"
port=$(free_port)
GUARDED_LAMBDA_URL="http://127.0.0.1:$port"
start_bg lambda-guarded "$ROOT/.venv/bin/cargo-lambda" lambda watch \
  --invoke-address 127.0.0.1 --invoke-port "$port" --ignore-changes --concurrency 2 \
  --env-file "$STATE/lambda-guarded.env"
wait_http "$GUARDED_LAMBDA_URL/" lambda-guarded
log "lambdas     $GUARDED_LAMBDA_URL (ALLOW_PROVISIONING=false, MAX_CONCURRENT_JOBS=${GUARDED_MAX_CONCURRENT_JOBS:-2})"

# The first invocation of each function starts (and if needed builds) it: do that now, so no
# state machine Task pays for it. Any answer (a result or a typed error) means it is up.
for f in "${FUNCTIONS[@]}"; do
  code=$(curl -s -o "$STATE/warmup-$f.json" -w '%{http_code}' --max-time 900 \
    -H 'content-type: application/json' -d '{"warmup":true}' \
    "$LAMBDA_URL/2015-03-31/functions/$f/invocations") || code=000
  if [ "$code" != 200 ] && ! jq -e '.errorType' "$STATE/warmup-$f.json" >/dev/null 2>&1; then
    log "$f did not start (HTTP $code): $(head -c 300 "$STATE/warmup-$f.json" 2>/dev/null)"
    log "see $STATE/lambda.log"
    false
  fi
done
log "functions   ${FUNCTIONS[*]} answering"

# After the warm-up, so no event waits on a function's first start.
RELAY_LOG="$STATE/job-event-relay.jsonl"
start_bg job-event-relay "$ROOT/target/debug/job-event-relay" --moto "$MOTO_URL" \
  --queue-url "$(res jobEventsQueueUrl)" --lambda-url "$LAMBDA_URL" --function status-poller \
  --record "$RELAY_LOG"
deadline=$((SECONDS + 30))
until [[ $(head -n1 "$STATE/job-event-relay.out" 2>/dev/null) == relaying* ]]; do
  kill -0 "$(cat "$STATE/job-event-relay.pid")" 2>/dev/null || { log "job-event-relay exited: $(tail -n5 "$STATE/job-event-relay.log")"; false; }
  [ $SECONDS -lt $deadline ] || { log "job-event-relay did not start (see $STATE/job-event-relay.log)"; false; }
  sleep 0.1
done
log "relay       $(res jobEventsQueueUrl) -> status-poller (deliveries: $RELAY_LOG)"

jq -n --arg moto "$MOTO_URL" --arg sim "$SIM_URL" --arg sink "$SINK_URL" --arg lambda "$LAMBDA_URL" \
  --arg guardedlambda "$GUARDED_LAMBDA_URL" \
  --arg sfn "$SFN_URL" --arg relaylog "$RELAY_LOG" \
  --slurpfile res "$STATE/resources.json" --rawfile envfile "$STATE/lambda.env" '{
    motoUrl: $moto, bedrockSimUrl: $sim, slackSinkUrl: $sink, lambdaInvokeUrl: $lambda, sfnUrl: $sfn,
    guardedLambdaInvokeUrl: $guardedlambda,
    jobEventRelayLog: $relaylog,
    resources: $res[0],
    lambdaEnv: ($envfile | split("\n") | map(select(length > 0) | capture("^(?<key>[^=]+)=(?<value>.*)$")) | from_entries)
  }' >"$STATE/stack.json"
log "ready: $STATE/stack.json"
