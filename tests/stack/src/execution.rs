//! Executions of the real state machine: the runner (`tests/stack/runner/run-execution.mjs`,
//! aws-local-stepfunctions on Node 22) started with an input, its events read back as they happen,
//! and what a test can do with them (states entered, retries, a state's output, the run id).

use std::collections::BTreeMap;
use std::process::Stdio;

use anyhow::{anyhow, bail, Context, Result};
use distillery_core::domain::run::RunId;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::{state_dir, Stack};

/// What a test does between two steps of an execution ([`Stack::run_execution_pausing_before`]),
/// given the execution's events so far.
pub type BetweenSteps<'a> = Box<
    dyn FnOnce(Vec<Value>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>>
        + 'a,
>;

/// The state machine's one notifier Task (statemachine/distillery.asl.json).
pub const NOTIFY_TASK: &str = "Notify";

/// One execution of the state machine, as the runner reported it.
#[derive(Debug, Clone, Default)]
pub struct Execution {
    /// `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// aws-local-stepfunctions' event log, in order.
    pub events: Vec<Value>,
    /// State transitions as Step Functions bills them: one per state entered, plus one per retry.
    pub transitions: u64,
    /// [`Self::transitions`] per state name.
    pub transitions_by_state: BTreeMap<String, u64>,
    /// `(state, token)` of every task token the runner minted for a waitForTaskToken state, in order.
    pub task_tokens: Vec<(String, String)>,
}

impl Execution {
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }

    /// State names in the order they were entered.
    pub fn states_entered(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["type"] == "StateEntered")
            .filter_map(|e| e["state"]["name"].as_str().map(str::to_string))
            .collect()
    }

    /// The `Error` of every failed attempt of `state`, in order (retried or not).
    pub fn failures_of(&self, state: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["type"] == "StateFailed" && e["state"]["name"] == state)
            .filter_map(|e| e["Error"].as_str().map(str::to_string))
            .collect()
    }

    pub fn retries_of(&self, state: &str) -> usize {
        self.events
            .iter()
            .filter(|e| e["type"] == "StateRetried" && e["state"]["name"] == state)
            .count()
    }

    /// The output of the last exit of `state`.
    ///
    /// A `Notify<Milestone>` state (`NotifyCompleted`, `NotifyRunError`, ...) is a Pass that only
    /// prepares the request for the one `Notify` task; the notifier's answer (`notification`, or
    /// `notificationError`) is in the output of that `Notify` run, so that is what this returns.
    pub fn output_of(&self, state: &str) -> Option<&Value> {
        let exits: Vec<&Value> = self
            .events
            .iter()
            .filter(|e| e["type"] == "StateExited")
            .collect();
        let i = exits.iter().rposition(|e| e["state"]["name"] == state)?;
        let exit = if state.starts_with("Notify")
            && state != NOTIFY_TASK
            && exits[i]["state"]["type"] == "Pass"
        {
            exits
                .get(i + 1)
                .filter(|e| e["state"]["name"] == NOTIFY_TASK)?
        } else {
            exits[i]
        };
        Some(&exit["state"]["output"])
    }

    /// `runId` from the validator's result.
    pub fn run_id(&self) -> Option<RunId> {
        self.output_of("ValidateDataset")
            .and_then(|o| o["validation"]["runId"].as_str())
            .map(|s| RunId(s.to_string()))
    }
}

/// One execution to run, with its options: `stack.execution(&input).substitution("A", "b").run()`.
/// The stack-wide substitutions ([`Stack::default_substitutions`]) apply unless overridden here.
pub struct ExecutionRequest<'s> {
    stack: &'s Stack,
    input: Value,
    name: Option<String>,
    substitutions: BTreeMap<String, String>,
    runner_args: Vec<String>,
}

impl<'s> ExecutionRequest<'s> {
    /// The execution's name (see [`Stack::run_execution_named`]).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Fills `${name}` in the definition with `value` for this execution (the runner's
    /// `--substitution`), e.g. `.substitution("JobTrackingMode", "polling")`.
    pub fn substitution(mut self, name: &str, value: impl ToString) -> Self {
        self.substitutions
            .insert(name.to_string(), value.to_string());
        self
    }

    /// Extra runner options (see run-execution.mjs), e.g. `["--time-scale", "0.1"]`.
    pub fn runner_args(mut self, args: &[&str]) -> Self {
        self.runner_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// The runner's `--time-scale`: Wait states and callback timeouts last `scale` times as long.
    pub fn time_scale(self, scale: f64) -> Self {
        self.runner_args(&["--time-scale", &scale.to_string()])
    }

    pub async fn run(self) -> Result<Execution> {
        let args: Vec<&str> = self.runner_args.iter().map(String::as_str).collect();
        Ok(self
            .stack
            .execute(
                &self.input,
                self.name.as_deref(),
                &args,
                &self.substitutions,
                None,
            )
            .await?
            .0)
    }
}

impl Stack {
    /// An execution of `statemachine/distillery.asl.json` with `input`, to configure and then
    /// [`ExecutionRequest::run`].
    pub fn execution(&self, input: &Value) -> ExecutionRequest<'_> {
        ExecutionRequest {
            stack: self,
            input: input.clone(),
            name: None,
            substitutions: BTreeMap::new(),
            runner_args: Vec::new(),
        }
    }

    /// Runs one execution of `statemachine/distillery.asl.json` with `input`.
    pub async fn run_execution(&self, input: &Value) -> Result<Execution> {
        self.run_execution_named(input, None).await
    }

    /// [`Self::run_execution`] with the execution's name given (its `$$.Execution.Id` is then
    /// [`Self::execution_id`] of it), e.g. to stand in for an execution whose earlier attempt
    /// crashed.
    pub async fn run_execution_named(
        &self,
        input: &Value,
        name: Option<&str>,
    ) -> Result<Execution> {
        self.run_execution_with(input, name, &[]).await
    }

    /// [`Self::run_execution_named`] with extra runner options, e.g. the fault
    /// `["--lose-first-response-of", "ValidateDataset"]` (see run-execution.mjs).
    pub async fn run_execution_with(
        &self,
        input: &Value,
        name: Option<&str>,
        runner_args: &[&str],
    ) -> Result<Execution> {
        Ok(self
            .execute(input, name, runner_args, &BTreeMap::new(), None)
            .await?
            .0)
    }

    /// Runs one execution, holding the first invocation of the Task state `state` until `between`
    /// (given the events so far) has finished: the way to act between two steps of a real execution.
    /// Returns whether the execution reached `state` (and so whether `between` ran).
    pub async fn run_execution_pausing_before(
        &self,
        input: &Value,
        state: &str,
        between: BetweenSteps<'_>,
    ) -> Result<(Execution, bool)> {
        self.execute(input, None, &[], &BTreeMap::new(), Some((state, between)))
            .await
    }

    async fn execute(
        &self,
        input: &Value,
        name: Option<&str>,
        runner_args: &[&str],
        substitutions: &BTreeMap<String, String>,
        pause: Option<(&str, BetweenSteps<'_>)>,
    ) -> Result<(Execution, bool)> {
        let node = self.root.join("node_modules/.bin/node");
        let runner = self.root.join("tests/stack/runner/run-execution.mjs");
        if !node.exists() {
            bail!(
                "{} is missing: run scripts/bootstrap.sh (npm package node@22)",
                node.display()
            );
        }
        let mut cmd = tokio::process::Command::new(&node);
        cmd.arg(&runner)
            .arg("--definition")
            .arg(self.root.join("statemachine/distillery.asl.json"))
            .arg("--invoke-url")
            .arg(&self.info.lambda_invoke_url)
            .arg("--retry-delay-scale")
            .arg(std::env::var("DISTILLERY_RETRY_DELAY_SCALE").unwrap_or_else(|_| "0.01".into()))
            .args(name.map(|n| ["--execution-name", n]).into_iter().flatten());
        if !self.info.sfn_url.is_empty() {
            cmd.arg("--sfn-url").arg(&self.info.sfn_url);
        }
        // The stack-wide defaults, overridden by this execution's own.
        let mut all = self.default_substitutions.clone();
        all.extend(substitutions.clone());
        for (k, v) in &all {
            cmd.arg("--substitution").arg(format!("{k}={v}"));
        }
        cmd.args(runner_args);
        let resume_file = state_dir().join(format!(
            "resume-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        let (pause_state, mut between) = match pause {
            Some((state, between)) => (Some(state), Some(between)),
            None => (None, None),
        };
        if let Some(state) = pause_state {
            cmd.arg("--pause-before")
                .arg(state)
                .arg("--resume-file")
                .arg(&resume_file);
        }
        let mut child = cmd
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the state machine runner (node)")?;
        let mut stdin = child.stdin.take().context("runner stdin")?;
        stdin.write_all(input.to_string().as_bytes()).await?;
        drop(stdin);
        // stderr is drained beside stdout, so a chatty runner can never block on a full pipe.
        let mut stderr = child.stderr.take().context("runner stderr")?;
        let stderr_text = tokio::spawn(async move {
            let mut text = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
            text
        });
        let stdout = child.stdout.take().context("runner stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut events = Vec::new();
        let mut task_tokens = Vec::new();
        let mut result = None;
        let mut paused = false;
        while let Some(line) = lines.next_line().await? {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line)
                .with_context(|| format!("runner printed a line that is not JSON: {line}"))?;
            match v["kind"].as_str() {
                Some("event") => events.push(v),
                Some("result") => result = Some(v),
                Some("taskToken") => task_tokens.push((
                    v["state"].as_str().unwrap_or_default().to_string(),
                    v["taskToken"].as_str().unwrap_or_default().to_string(),
                )),
                Some("paused") => {
                    paused = true;
                    let acted = match between.take() {
                        Some(between) => between(events.clone()).await,
                        None => Ok(()),
                    };
                    // Resume even when the action failed, so the runner ends; report the failure.
                    std::fs::write(&resume_file, b"resume")
                        .with_context(|| format!("writing {}", resume_file.display()))?;
                    acted.context("the action between steps failed")?;
                }
                _ => {}
            }
        }
        let status = child.wait().await?;
        let stderr = stderr_text.await.unwrap_or_default();
        let _ = std::fs::remove_file(&resume_file);
        let result = result.ok_or_else(|| {
            anyhow!(
                "the runner ended without a result (exit {:?}): {stderr}",
                status.code()
            )
        })?;
        let execution = Execution {
            status: result["status"].as_str().unwrap_or_default().to_string(),
            output: result.get("output").cloned(),
            error: result["error"].as_str().map(str::to_string),
            cause: result["cause"].as_str().map(str::to_string),
            events,
            transitions: result["transitions"].as_u64().unwrap_or_default(),
            transitions_by_state: result["transitionsByState"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default(),
            task_tokens,
        };
        Ok((execution, paused))
    }

    /// The `$$.Execution.Id` the runner gives an execution named `name` (run-execution.mjs).
    pub fn execution_id(name: &str) -> String {
        format!("arn:aws:states:us-east-1:123456789012:execution:distillery-local:{name}")
    }
}
