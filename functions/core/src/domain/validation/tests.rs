use super::*;

const GOOD: &str = r#"{"schemaVersion":"bedrock-conversation-2024","system":[{"text":"Be brief."}],"messages":[{"role":"user","content":[{"text":"What is 2+2?"}]},{"role":"assistant","content":[{"text":"4"}]}]}"#;

/// Options with the real limits except the record minimum, so small examples test one rule at a time.
fn options(multi_turn: bool) -> ValidationOptions {
    let mut limits = Limits::builtin().dataset;
    limits.min_records = 0;
    ValidationOptions {
        allow_multi_turn: multi_turn,
        student: None,
        limits,
    }
}

fn run(text: &str, multi_turn: bool) -> ValidationReport {
    validate_reader(text.as_bytes(), &options(multi_turn)).unwrap()
}

/// (line, code) of every error, in report order.
fn errors(report: &ValidationReport) -> Vec<(Option<u64>, Code)> {
    report.errors.iter().map(|e| (e.line, e.code)).collect()
}

fn warnings(report: &ValidationReport) -> Vec<(Option<u64>, Code)> {
    report.warnings.iter().map(|e| (e.line, e.code)).collect()
}

/// A valid line, then `bad` on line 2, then another valid line: the error must be on line 2 only.
fn assert_line2(bad: &str, code: Code) -> ValidationReport {
    let report = run(&format!("{GOOD}\n{bad}\n{GOOD}\n"), false);
    assert!(!report.valid, "{bad} should be invalid");
    assert_eq!(report.records, 3);
    assert_eq!(report.invalid_records, 1);
    assert!(
        report.errors.iter().all(|e| e.line == Some(2)),
        "{:?}",
        report.errors
    );
    assert!(
        report.errors.iter().any(|e| e.code == code),
        "expected {code} for {bad}, got {:?}",
        report.errors
    );
    report
}

fn user(text: &str) -> String {
    format!(r#"{{"role":"user","content":[{{"text":{text:?}}}]}}"#)
}

fn assistant(text: &str) -> String {
    format!(r#"{{"role":"assistant","content":[{{"text":{text:?}}}]}}"#)
}

fn record(messages: &[String]) -> String {
    format!(
        r#"{{"schemaVersion":"bedrock-conversation-2024","messages":[{}]}}"#,
        messages.join(",")
    )
}

#[test]
fn a_valid_record_passes_with_stats() {
    let report = run(&format!("{GOOD}\n"), false);
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(report.records, 1);
    assert_eq!(report.error_count, 0);
    assert_eq!(report.stats.labelled, 1);
    assert_eq!(report.stats.with_system_prompt, 1);
    // "Be brief." (9 bytes → 3) + "What is 2+2?" (12 → 3); response "4" (1 → 1).
    assert_eq!(report.stats.estimated_input_tokens, 6);
    assert_eq!(report.stats.estimated_output_tokens, 1);
    assert_eq!(report.stats.bytes, GOOD.len() as u64 + 1);
}

#[test]
fn invalid_json_is_reported_on_its_line() {
    let r = assert_line2(
        r#"{"schemaVersion": "bedrock-conversation-2024", "messages": ["#,
        Code::InvalidJson,
    );
    assert!(
        r.errors[0].message.contains("not valid JSON"),
        "{}",
        r.errors[0].message
    );
    let r = assert_line2(r#"{"schemaVersion" "x"}"#, Code::InvalidJson);
    assert!(
        r.errors[0].message.contains("column"),
        "{}",
        r.errors[0].message
    );
    assert_line2(&format!("{GOOD} {GOOD}"), Code::InvalidJson);
}

#[test]
fn invalid_utf8_is_reported_on_its_line() {
    let mut bytes = format!("{GOOD}\n").into_bytes();
    bytes.extend_from_slice(b"{\"schemaVersion\":\"bedrock-conversation-2024\xff\"}\n");
    let report = validate_reader(&bytes[..], &options(false)).unwrap();
    assert_eq!(errors(&report), vec![(Some(2), Code::InvalidUtf8)]);
    assert!(
        report.errors[0].message.contains("byte 44"),
        "{}",
        report.errors[0].message
    );
}

#[test]
fn a_line_that_is_not_an_object_is_an_error() {
    assert_line2("[1, 2]", Code::NotAnObject);
    assert_line2("\"text\"", Code::NotAnObject);
}

#[test]
fn schema_version_must_be_exact() {
    assert_line2(
        &GOOD.replace("bedrock-conversation-2024", "bedrock-conversion-2024"),
        Code::SchemaVersion,
    );
    assert_line2(
        &GOOD.replace("\"bedrock-conversation-2024\"", "2024"),
        Code::SchemaVersion,
    );
    let r = assert_line2(
        &GOOD.replace("\"schemaVersion\":\"bedrock-conversation-2024\",", ""),
        Code::MissingKey,
    );
    assert!(r.errors[0].message.contains("schemaVersion"));
}

#[test]
fn unknown_and_duplicate_keys_are_errors() {
    let r = assert_line2(
        &GOOD.replace("{\"schemaVersion\"", "{\"id\":7,\"schemaVersion\""),
        Code::UnknownKey,
    );
    assert!(r.errors[0].message.contains("\"id\""));
    assert_line2(
        &GOOD.replace("\"role\":\"user\"", "\"role\":\"user\",\"name\":\"bob\""),
        Code::UnknownKey,
    );
    assert_line2(
        &GOOD.replace("{\"schemaVersion\"", "{\"messages\":[],\"schemaVersion\""),
        Code::DuplicateKey,
    );
}

#[test]
fn system_must_be_one_text_block() {
    // Valid without system, too.
    assert!(run(&format!("{}\n", record(&[user("hi")])), false).valid);
    assert_line2(
        &GOOD.replace(r#"[{"text":"Be brief."}]"#, r#""Be brief.""#),
        Code::InvalidSystem,
    );
    assert_line2(
        &GOOD.replace(
            r#"[{"text":"Be brief."}]"#,
            r#"[{"text":"a"},{"text":"b"}]"#,
        ),
        Code::InvalidSystem,
    );
    assert_line2(
        &GOOD.replace(r#"[{"text":"Be brief."}]"#, r#"[{"text":5}]"#),
        Code::InvalidSystem,
    );
}

#[test]
fn messages_are_required_and_non_empty() {
    assert_line2(
        r#"{"schemaVersion":"bedrock-conversation-2024"}"#,
        Code::MissingKey,
    );
    assert_line2(
        r#"{"schemaVersion":"bedrock-conversation-2024","messages":[]}"#,
        Code::InvalidMessages,
    );
    assert_line2(
        r#"{"schemaVersion":"bedrock-conversation-2024","messages":{"role":"user"}}"#,
        Code::InvalidMessages,
    );
    assert_line2(&record(&["42".into()]), Code::InvalidMessages);
}

#[test]
fn roles_must_be_user_or_assistant_and_alternate() {
    let r = assert_line2(
        &GOOD.replace("\"role\":\"assistant\"", "\"role\":\"bot\""),
        Code::InvalidRole,
    );
    assert!(
        r.errors[0].message.contains("messages[1].role"),
        "{}",
        r.errors[0].message
    );
    assert_line2(
        &GOOD.replace("\"role\":\"assistant\",", ""),
        Code::InvalidRole,
    );
    let r = assert_line2(&record(&[assistant("hi"), user("there")]), Code::RoleOrder);
    assert!(
        r.errors[0].message.contains("messages[0]"),
        "{}",
        r.errors[0].message
    );
    assert_line2(&record(&[user("a"), user("b")]), Code::RoleOrder);
}

#[test]
fn content_must_be_exactly_one_text_block_type_tolerated() {
    let typed = GOOD.replace(r#"{"text":"4"}"#, r#"{"type":"text","text":"4"}"#);
    assert!(run(&format!("{typed}\n"), false).valid);
    assert_line2(
        &GOOD.replace(r#"[{"text":"4"}]"#, r#""4""#),
        Code::InvalidContent,
    );
    assert_line2(
        &GOOD.replace(r#"[{"text":"4"}]"#, "[]"),
        Code::InvalidContent,
    );
    assert_line2(
        &GOOD.replace(r#"[{"text":"4"}]"#, r#"[{"text":"4"},{"text":"5"}]"#),
        Code::InvalidContent,
    );
    assert_line2(
        &GOOD.replace(r#"[{"text":"4"}]"#, r#"[{"image":{"format":"png"}}]"#),
        Code::InvalidContent,
    );
    assert_line2(
        &GOOD.replace(r#"{"text":"4"}"#, r#"{"type":"image","text":"4"}"#),
        Code::InvalidContent,
    );
    assert_line2(
        &GOOD.replace(r#","content":[{"text":"4"}]"#, ""),
        Code::InvalidContent,
    );
}

#[test]
fn empty_prompts_are_errors_empty_responses_warnings() {
    let r = assert_line2(&record(&[user("  \n\t")]), Code::EmptyPrompt);
    assert!(r.errors[0].message.contains("messages[0]"));
    let report = run(&format!("{}\n", record(&[user("q"), assistant("")])), false);
    assert!(report.valid);
    assert_eq!(warnings(&report), vec![(Some(1), Code::EmptyResponse)]);
}

#[test]
fn multi_turn_only_when_allowed() {
    let conversation = record(&[user("a"), assistant("b"), user("c"), assistant("d")]);
    let r = assert_line2(&conversation, Code::MultiTurn);
    assert!(r.errors[0].message.contains("4 messages"));
    let report = run(&format!("{conversation}\n"), true);
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(report.stats.multi_turn, 1);
    // Single-turn shapes are fine either way; an unlabelled prompt counts as such.
    let report = run(&format!("{}\n", record(&[user("a")])), false);
    assert!(report.valid);
    assert_eq!(report.stats.unlabelled, 1);
}

#[test]
fn for_student_follows_the_catalog() {
    let catalog = ModelCatalog::builtin();
    let limits = Limits::builtin();
    assert!(
        ValidationOptions::for_student(&catalog, Some("amazon.nova-lite-v1:0:300k"), &limits)
            .allow_multi_turn
    );
    assert!(
        !ValidationOptions::for_student(
            &catalog,
            Some("meta.llama3-1-8b-instruct-v1:0:128k"),
            &limits
        )
        .allow_multi_turn
    );
    assert!(!ValidationOptions::for_student(&catalog, Some("unknown"), &limits).allow_multi_turn);
    let none = ValidationOptions::for_student(&catalog, None, &limits);
    assert!(!none.allow_multi_turn);
    assert_eq!(none.limits, limits.dataset);
}

#[test]
fn crlf_and_final_newline_are_fine_blank_lines_are_not() {
    assert!(run(&format!("{GOOD}\r\n{GOOD}\r\n"), false).valid);
    assert!(run(&format!("{GOOD}\n{GOOD}"), false).valid);
    let report = run(&format!("{GOOD}\n\n{GOOD}\n"), false);
    assert_eq!(errors(&report), vec![(Some(2), Code::BlankLine)]);
    let report = run(&format!("{GOOD}\n{GOOD}\n  \r\n"), false);
    assert_eq!(errors(&report), vec![(Some(3), Code::BlankLine)]);
}

#[test]
fn a_byte_order_mark_is_an_error() {
    let report = run(&format!("\u{FEFF}{GOOD}\n{GOOD}\n"), false);
    assert_eq!(errors(&report), vec![(Some(1), Code::ByteOrderMark)]);
}

#[test]
fn record_count_limits_apply() {
    let limits = Limits::builtin().dataset;
    let opts = ValidationOptions {
        allow_multi_turn: false,
        student: None,
        limits: limits.clone(),
    };
    let few = format!("{GOOD}\n").repeat(limits.min_records as usize - 1);
    let report = validate_reader(few.as_bytes(), &opts).unwrap();
    assert_eq!(errors(&report), vec![(None, Code::TooFewRecords)]);
    let enough = format!("{GOOD}\n").repeat(limits.min_records as usize);
    assert!(validate_reader(enough.as_bytes(), &opts).unwrap().valid);
    let empty = validate_reader(&b""[..], &opts).unwrap();
    assert_eq!(empty.records, 0);
    assert_eq!(errors(&empty), vec![(None, Code::TooFewRecords)]);

    let mut small = opts.clone();
    small.limits.max_records = 3;
    small.limits.min_records = 1;
    let report = validate_reader(format!("{GOOD}\n").repeat(4).as_bytes(), &small).unwrap();
    assert_eq!(errors(&report), vec![(None, Code::TooManyRecords)]);
    assert!(
        validate_reader(format!("{GOOD}\n").repeat(3).as_bytes(), &small)
            .unwrap()
            .valid
    );
}

#[test]
fn dataset_size_limit_applies() {
    let mut opts = options(false);
    let line = format!("{GOOD}\n");
    opts.limits.max_dataset_bytes = (line.len() * 2) as u64;
    assert!(
        validate_reader(line.repeat(2).as_bytes(), &opts)
            .unwrap()
            .valid
    );
    let report = validate_reader(line.repeat(3).as_bytes(), &opts).unwrap();
    assert_eq!(errors(&report), vec![(None, Code::DatasetTooLarge)]);
}

#[test]
fn over_long_lines_are_errors_and_skipped() {
    let mut opts = options(false);
    opts.limits.max_line_bytes = 1000;
    let long = format!("{}\n", "x".repeat(5000));
    let text = format!("{GOOD}\n{long}{GOOD}\n");
    // Fed in small chunks, so the long line spans many of them.
    let mut v = DatasetValidator::new(opts.clone());
    for chunk in text.as_bytes().chunks(100) {
        v.push_bytes(chunk);
        assert!(
            v.buffered_capacity() <= 2048,
            "buffered {}",
            v.buffered_capacity()
        );
    }
    let report = v.finish();
    assert_eq!(errors(&report), vec![(Some(2), Code::LineTooLong)]);
    assert!(
        report.errors[0].message.contains("5000 bytes"),
        "{}",
        report.errors[0].message
    );
    assert_eq!(report.records, 3);
    // The same line in one piece, and as the last line without a newline.
    let report =
        validate_reader(format!("{GOOD}\n{}", "y".repeat(5000)).as_bytes(), &opts).unwrap();
    assert_eq!(errors(&report), vec![(Some(2), Code::LineTooLong)]);
}

#[test]
fn warnings_for_duplicates_markers_and_long_records() {
    let mut opts = options(false);
    opts.limits.long_record_warn_bytes = 300;
    let other = record(&[user("Summarise: User: hello <image>")]);
    let long = record(&[user(&"z".repeat(400))]);
    let text = format!(
        "{GOOD}\n{other}\n{}\n{long}\n",
        GOOD.replace("\"4\"", "\"four\"")
    );
    let report = validate_reader(text.as_bytes(), &opts).unwrap();
    assert!(report.valid, "{:?}", report.errors);
    assert_eq!(
        warnings(&report),
        vec![
            (Some(2), Code::ReservedMarker),
            (Some(3), Code::DuplicatePrompt),
            (Some(4), Code::LongRecord)
        ]
    );
    assert!(report.warnings[0].message.contains("\"User:\""));
    assert!(report.warnings[1].message.contains("line 1"));
    assert_eq!(report.stats.duplicate_prompts, 1);
    // A different system prompt makes a different prompt.
    let other_system = GOOD.replace("Be brief.", "Be verbose.");
    let report = run(&format!("{GOOD}\n{other_system}\n"), false);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn several_problems_on_one_line_are_all_reported_once_counted() {
    let bad = r#"{"schemaVersion":"v1","extra":1,"messages":[{"role":"bot","content":"x"}]}"#;
    let report = run(&format!("{bad}\n"), false);
    assert_eq!(report.invalid_records, 1);
    let codes: Vec<Code> = report.errors.iter().map(|e| e.code).collect();
    assert_eq!(
        codes,
        vec![
            Code::UnknownKey,
            Code::SchemaVersion,
            Code::InvalidRole,
            Code::InvalidContent
        ]
    );
    assert_eq!(report.error_count, 4);
}

#[test]
fn reported_errors_are_capped_but_counted() {
    let mut opts = options(false);
    opts.limits.max_reported_errors = 5;
    opts.limits.max_reported_warnings = 2;
    let text = "nope\n".repeat(20) + &format!("{GOOD}\n").repeat(5);
    let report = validate_reader(text.as_bytes(), &opts).unwrap();
    assert_eq!(report.errors.len(), 5);
    assert_eq!(report.error_count, 20);
    assert_eq!(report.invalid_records, 20);
    assert!(report.errors_truncated());
    assert_eq!(report.warnings.len(), 2);
    assert_eq!(report.warning_count, 4);
    // Dataset-level errors are listed even when the cap is reached.
    opts.limits.min_records = 100;
    let report = validate_reader(text.as_bytes(), &opts).unwrap();
    assert_eq!(report.errors[0].code, Code::TooFewRecords);
    assert_eq!(report.error_count, 21);
}

#[test]
fn first_errors_and_summary_use_the_ledger_format() {
    let report = run(&format!("{GOOD}\n[]\n"), false);
    assert_eq!(
        report.first_errors(3),
        vec!["line 2: [not_an_object] the line is not a JSON object".to_string()]
    );
    // The full message stays in the report.
    assert_eq!(
        report.errors[0].to_string(),
        "line 2: [not_an_object] the line is an array, not a JSON object"
    );
    let summary = report.summary(3);
    assert!(!summary.valid);
    assert_eq!(summary.records, 2);
    assert_eq!(summary.invalid_records, 1);
    assert_eq!(summary.first_errors.len(), 1);
}

#[test]
fn the_report_round_trips_through_json_with_snake_case_codes() {
    let report = run("{}\n", false);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["errors"][0]["code"], "missing_key");
    assert_eq!(json["errors"][0]["line"], 1);
    for key in [
        "valid",
        "records",
        "invalid_records",
        "error_count",
        "warnings",
        "warning_count",
        "stats",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let back: ValidationReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn push_line_and_push_bytes_agree() {
    let text = format!("{GOOD}\nnot json\n{}\n", record(&[user("x")]));
    let mut v = DatasetValidator::new(options(false));
    for line in text.lines() {
        v.push_line(line.as_bytes());
    }
    let by_line = v.finish();
    let by_chunk = run(&text, false);
    assert_eq!(by_line, by_chunk);
}

/// A reader that makes records as it is read and remembers the largest read asked of it.
struct LazyDataset {
    remaining: u64,
    pending: Vec<u8>,
    pos: usize,
    largest_read: usize,
    n: u64,
}

impl Read for LazyDataset {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.largest_read = self.largest_read.max(buf.len());
        if self.pos == self.pending.len() {
            if self.remaining == 0 {
                return Ok(0);
            }
            self.remaining -= 1;
            self.n += 1;
            self.pending.clear();
            self.pos = 0;
            let body = "lorem ipsum dolor sit amet ".repeat(1 + (self.n % 40) as usize);
            let line = record(&[user(&format!("{} {body}", self.n)), assistant(&body)]);
            self.pending.extend_from_slice(line.as_bytes());
            self.pending.push(b'\n');
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn a_large_generated_dataset_is_validated_in_bounded_memory() {
    // 40,000 records (~23 MB) produced on demand: the validator holds one read buffer and at most one
    // line, never the dataset.
    let mut source = LazyDataset {
        remaining: 40_000,
        pending: Vec::new(),
        pos: 0,
        largest_read: 0,
        n: 0,
    };
    let opts = options(false);
    let mut v = DatasetValidator::new(opts);
    let mut buf = vec![0u8; 64 * 1024];
    let mut largest_carry = 0;
    loop {
        let n = source.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        v.push_bytes(&buf[..n]);
        largest_carry = largest_carry.max(v.buffered_capacity());
    }
    let report = v.finish();
    assert_eq!(report.records, 40_000);
    assert_eq!(report.stats.labelled, 40_000);
    // Too many records for Bedrock, which is the only error.
    assert_eq!(errors(&report), vec![(None, Code::TooManyRecords)]);
    assert!(report.stats.bytes > 20_000_000, "{}", report.stats.bytes);
    // The line carry-over buffer is bounded by the longest line (~2.2 KB here), not the dataset.
    assert!(largest_carry <= 8 * 1024, "carry grew to {largest_carry}");
    assert!(source.largest_read <= 64 * 1024);

    // And through validate_reader, whose reads are READ_CHUNK_BYTES at most.
    let mut source = LazyDataset {
        remaining: 2_000,
        pending: Vec::new(),
        pos: 0,
        largest_read: 0,
        n: 0,
    };
    let report = validate_reader(&mut source, &options(false)).unwrap();
    assert_eq!(report.records, 2_000);
    assert!(report.valid);
    assert_eq!(source.largest_read, READ_CHUNK_BYTES);
}

#[test]
fn a_huge_single_line_is_rejected_without_buffering_it() {
    // 100 MB without a newline, generated on the fly.
    struct Endless(u64);
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (buf.len() as u64).min(self.0) as usize;
            buf[..n].fill(b'a');
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let opts = options(false);
    let mut v = DatasetValidator::new(opts.clone());
    let mut reader = Endless(100 * 1024 * 1024);
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        v.push_bytes(&buf[..n]);
        assert!(v.buffered_capacity() as u64 <= opts.limits.max_line_bytes * 2);
    }
    let report = v.finish();
    assert_eq!(errors(&report), vec![(Some(1), Code::LineTooLong)]);
    assert_eq!(report.stats.longest_line_bytes, 100 * 1024 * 1024);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), chunk in 1usize..300) {
            let mut v = DatasetValidator::new(options(true));
            for piece in bytes.chunks(chunk) {
                v.push_bytes(piece);
            }
            let report = v.finish();
            prop_assert_eq!(report.stats.bytes, bytes.len() as u64);
            prop_assert!(report.invalid_records <= report.records);
        }

        #[test]
        fn on_mutated_records(
            flips in proptest::collection::vec((0usize..GOOD.len(), any::<u8>()), 1..6),
            multi in any::<bool>(),
        ) {
            let mut bytes = GOOD.as_bytes().to_vec();
            for (at, b) in flips {
                bytes[at] = b;
            }
            bytes.push(b'\n');
            let report = validate_reader(&bytes[..], &options(multi)).unwrap();
            // Every line error carries the line number.
            prop_assert!(report.errors.iter().all(|e| e.line.is_some()));
        }

        #[test]
        fn on_random_json_shapes(text in "\\{(\"(schemaVersion|system|messages|role|content|text|type)\":(\\[|\\{|\"user\"|\"assistant\"|1|null|\\]|\\}|,)){0,12}") {
            let _ = run(&text, true);
        }
    }
}

/// Issue 16: what the run record and the messages keep of an error (`first_errors`) is the line,
/// the field, the code and a fixed reason; the record's values (a wrong role, an unknown key, a
/// misspelt schemaVersion, a type) stay in the full report only.
#[test]
fn first_errors_carry_no_record_values() {
    const SECRET: &str = "SECRET-4111111111111111";
    let lines = [
        format!(
            r#"{{"schemaVersion":"{SECRET}","messages":[{}]}}"#,
            user("hi")
        ),
        format!(
            r#"{{"schemaVersion":"bedrock-conversation-2024","{SECRET}":1,"messages":[{}]}}"#,
            user("hi")
        ),
        format!(
            r#"{{"schemaVersion":"bedrock-conversation-2024","messages":[{{"role":"{SECRET}","content":[{{"text":"hi"}}]}}]}}"#
        ),
        format!(
            r#"{{"schemaVersion":"bedrock-conversation-2024","messages":[{{"role":"user","{SECRET}":2,"content":[{{"text":"hi"}}]}}]}}"#
        ),
        format!(
            r#"{{"schemaVersion":"bedrock-conversation-2024","messages":[{{"role":"user","content":[{{"text":"hi","type":"{SECRET}"}}]}}]}}"#
        ),
        format!(
            r#"{{"schemaVersion":"bedrock-conversation-2024","messages":[{{"role":"user","content":[{{"text":"hi","{SECRET}":3}}]}}]}}"#
        ),
        format!(r#"{{"schemaVersion":"bedrock-conversation-2024","messages":"{SECRET}"}}"#),
        format!(r#"{{"schemaVersion": {SECRET}}}"#),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let mut opts = options(false);
    opts.limits.max_reported_errors = 100;
    let report = validate_reader(text.as_bytes(), &opts).unwrap();
    assert_eq!(
        report.invalid_records,
        lines.len() as u64,
        "{:?}",
        report.errors
    );
    // The report itself may quote (that is what makes it useful to whoever fixes the file).
    assert!(report
        .errors
        .iter()
        .any(|e| e.message.contains("SECRET-4111")));
    let first = report.first_errors(100);
    assert_eq!(first.len(), report.errors.len());
    for line in &first {
        assert!(!line.contains("SECRET") && !line.contains("4111"), "{line}");
    }
    let summary = report.summary(100).first_errors.join("\n");
    assert!(!summary.contains("SECRET"), "{summary}");
    // Line, code, field and reason.
    assert!(
        first.contains(
            &"line 3: [invalid_role] messages[0].role: role must be \"user\" or \"assistant\""
                .to_string()
        ),
        "{first:#?}"
    );
    assert!(
        first.contains(&"line 1: [schema_version] schemaVersion: schemaVersion must be \"bedrock-conversation-2024\"".to_string()),
        "{first:#?}"
    );
    assert!(
        first.contains(
            &"line 4: [unknown_key] messages[0]: a key that is not part of the format".to_string()
        ),
        "{first:#?}"
    );
    assert!(
        first.contains(&"line 5: [invalid_content] messages[0].content[0].type: content must hold one {\"text\": string} object".to_string()),
        "{first:#?}"
    );
}
