//! An eligible invocation record as one `bedrock-conversation-2024` dataset line: the prompt alone
//! (Bedrock's teacher answers it), or, with `usePromptResponse`, the prompt and the logged answer as
//! the final assistant turn (a labelled example).

use serde_json::{json, Value};

use super::record::Prompt;
use crate::domain::validation::SCHEMA_VERSION;

/// The dataset record for `prompt`, with `response` as the assistant's turn when given.
pub fn to_conversation(prompt: &Prompt, response: Option<&str>) -> Value {
    let mut messages = vec![json!({"role": "user", "content": [{"text": prompt.user}]})];
    if let Some(answer) = response {
        messages.push(json!({"role": "assistant", "content": [{"text": answer}]}));
    }
    let mut record = json!({"schemaVersion": SCHEMA_VERSION, "messages": messages});
    if let Some(system) = &prompt.system {
        record["system"] = json!([{"text": system}]);
    }
    record
}

/// [`to_conversation`] as one JSONL line, newline included.
pub fn to_jsonl_line(prompt: &Prompt, response: Option<&str>) -> String {
    let mut line = to_conversation(prompt, response).to_string();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::{Limits, ModelCatalog};
    use crate::domain::invocation_logs::record::prompt_from_body;
    use crate::domain::validation::{validate_reader, ValidationOptions};

    #[test]
    fn converted_records_pass_the_dataset_validator() {
        let bodies = [
            json!({"system": [{"text": "Be brief."}], "messages": [{"role": "user", "content": [{"text": "What is S3?"}]}]}),
            json!({"anthropic_version": "bedrock-2023-05-31", "system": "Terse.", "messages": [{"role": "user", "content": "Hi \"there\"\nnew line"}]}),
            json!({"schemaVersion": "messages-v1", "messages": [{"role": "user", "content": [{"text": "Q1"}, {"text": "Q2"}]}]}),
            json!({"prompt": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nJoke?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"}),
            json!({"prompt": "plain llama prompt"}),
        ];
        let mut jsonl = String::new();
        // 100 records: the validator's minimum. Half prompt-only, half with the logged answer.
        for i in 0..100 {
            let mut prompt = prompt_from_body(&bodies[i % bodies.len()]).unwrap();
            prompt.user = format!("{} #{i}", prompt.user);
            let answer = (i % 2 == 0).then(|| format!("answer {i}"));
            jsonl.push_str(&to_jsonl_line(&prompt, answer.as_deref()));
        }
        let catalog = ModelCatalog::load().unwrap();
        let limits = Limits::load().unwrap();
        for student in [
            None,
            Some("amazon.nova-lite-v1:0:300k"),
            Some("meta.llama3-1-8b-instruct-v1:0:128k"),
        ] {
            let options = ValidationOptions::for_student(&catalog, student, &limits);
            let report = validate_reader(jsonl.as_bytes(), &options).unwrap();
            assert!(report.valid, "{student:?}: {:?}", report.first_errors(5));
            assert_eq!(report.records, 100);
            assert_eq!(report.stats.labelled, 50);
            // Two bodies in five carry a system prompt.
            assert_eq!(report.stats.with_system_prompt, 40);
        }
    }

    #[test]
    fn the_shape_is_exactly_the_dataset_schema() {
        let p = Prompt {
            system: None,
            user: "u".into(),
        };
        assert_eq!(
            to_conversation(&p, None),
            json!({"schemaVersion": "bedrock-conversation-2024", "messages": [{"role": "user", "content": [{"text": "u"}]}]})
        );
        let p = Prompt {
            system: Some("s".into()),
            user: "u".into(),
        };
        assert_eq!(
            to_conversation(&p, Some("a")),
            json!({"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "s"}], "messages": [
                {"role": "user", "content": [{"text": "u"}]},
                {"role": "assistant", "content": [{"text": "a"}]}
            ]})
        );
    }
}
