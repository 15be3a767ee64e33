//! The local stack's fakes as a test sees them: the Bedrock simulator (calls, faults, events, the
//! student-quality knob, reset), the Slack sink, sfn-local's task-token calls, the job-event relay,
//! and invoking a function directly.

use super::*;

impl Stack {
    /// What the Slack sink received (`GET /_sink/messages`).
    pub async fn slack_messages(&self) -> Result<Vec<Value>> {
        let v: Value = self
            .get_json(&format!("{}/_sink/messages", self.info.slack_sink_url))
            .await?;
        Ok(match v {
            Value::Array(a) => a,
            other => other["messages"].as_array().cloned().unwrap_or_default(),
        })
    }

    /// `ok`, `fail` or `hang`.
    pub async fn set_slack_mode(&self, mode: &str) -> Result<()> {
        self.post_json(
            &format!("{}/_sink/mode", self.info.slack_sink_url),
            &serde_json::json!({ "mode": mode }),
        )
        .await
    }

    /// The Bedrock calls the simulator received (`GET /_sim/calls`).
    pub async fn bedrock_calls(&self) -> Result<Vec<Value>> {
        let v: Value = self
            .get_json(&format!("{}/_sim/calls", self.info.bedrock_sim_url))
            .await?;
        Ok(match v {
            Value::Array(a) => a,
            other => other["calls"].as_array().cloned().unwrap_or_default(),
        })
    }

    /// Every Step Functions call sfn-local received, oldest first (`GET /local/calls`).
    pub async fn sfn_calls(&self) -> Result<Vec<SfnCall>> {
        if self.info.sfn_url.is_empty() {
            bail!("this stack has no sfn-local (restart it with tests/stack/start.sh)");
        }
        let v = self
            .get_json(&format!("{}/local/calls", self.info.sfn_url))
            .await?;
        serde_json::from_value(v).context("sfn-local's /local/calls")
    }

    /// Invokes one Lambda directly (as the Lambda Invoke API does: `POST .../invocations` with `body`
    /// as the raw payload, JSON or not) and returns its answer: `Ok(payload)` on success,
    /// `Err((errorType, errorMessage))` when the function failed (`X-Amz-Function-Error`).
    pub async fn invoke(
        &self,
        function: &str,
        body: Vec<u8>,
    ) -> Result<std::result::Result<Value, (String, String)>> {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.info.lambda_invoke_url
        );
        let r = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let failed = r.headers().contains_key("x-amz-function-error") || !r.status().is_success();
        let text = r.text().await?;
        let payload: Value = serde_json::from_str(&text)
            .with_context(|| format!("{function} answered with a body that is not JSON: {text}"))?;
        Ok(if failed {
            Err((
                payload["errorType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                payload["errorMessage"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ))
        } else {
            Ok(payload)
        })
    }

    /// The simulator's job state-change events (`GET /_sim/events`), oldest first.
    pub async fn bedrock_events(&self) -> Result<Vec<Value>> {
        let v: Value = self
            .get_json(&format!("{}/_sim/events", self.info.bedrock_sim_url))
            .await?;
        Ok(v["events"].as_array().cloned().unwrap_or_default())
    }

    /// What `job-event-relay` has delivered so far (its JSON-lines log), oldest first.
    pub fn relay_deliveries(&self) -> Result<Vec<RelayDelivery>> {
        let path = self
            .info
            .job_event_relay_log
            .clone()
            .context("stack.json names no job-event-relay log (is the relay running?)")?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {path}")),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("{path}: {l}")))
            .collect()
    }

    /// Arms simulator faults (`POST /_sim/faults`).
    pub async fn bedrock_faults(&self, faults: &Value) -> Result<()> {
        self.post_json(
            &format!("{}/_sim/faults", self.info.bedrock_sim_url),
            faults,
        )
        .await
    }

    /// How often the simulated student answers like its teacher (`PUT /_sim/runtime`, 0..=1); the
    /// simulated judge prefers the teacher's answer on the rest.
    pub async fn set_student_quality(&self, quality: f64) -> Result<()> {
        let url = format!("{}/_sim/runtime", self.info.bedrock_sim_url);
        let resp = reqwest::Client::new()
            .put(&url)
            .json(&serde_json::json!({ "studentQuality": quality }))
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        if !resp.status().is_success() {
            bail!(
                "PUT {url}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Forgets simulator state, faults and calls (`POST /_sim/reset`), and puts Slack back to `ok`.
    pub async fn reset_fakes(&self) -> Result<()> {
        self.post_json(
            &format!("{}/_sim/reset", self.info.bedrock_sim_url),
            &serde_json::json!({}),
        )
        .await?;
        self.set_slack_mode("ok").await?;
        Ok(())
    }

    /// The Bedrock adapter aimed at the simulator, as a test's own client (to create resources no
    /// run owns, or read what Bedrock holds).
    pub async fn bedrock(&self) -> distillery_aws::bedrock::BedrockCustomizationService {
        let cfg = distillery_test_support::sdk_config(&self.info.bedrock_sim_url).await;
        distillery_aws::bedrock::BedrockCustomizationService::from_conf(&cfg)
    }
}
