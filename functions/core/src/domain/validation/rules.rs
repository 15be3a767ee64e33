//! The per-line rules. Each problem becomes one finding naming the field (`messages[1].role`) so the
//! user can fix the file without guessing; all independent problems of a line are reported.

use std::fmt;
use std::hash::Hasher;

use super::markers::find_reserved_marker;
use super::prompt_hash::PromptHasher;
use super::record::{parse_record, Message, Record, Shaped, TextBlock};
use super::{Code, DatasetValidator, BYTES_PER_TOKEN, DUPLICATE_TRACKING_CAP, SCHEMA_VERSION};

type TextList<'a> = Shaped<Vec<Shaped<TextBlock<'a>>>>;

/// Which text list a message is about, rendered lazily (no allocation on valid lines).
#[derive(Clone, Copy)]
enum Place {
    System,
    Content(usize),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::System => f.write_str("system"),
            Place::Content(i) => write!(f, "messages[{i}].content"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// A user-supplied value for a message: JSON-quoted and cut short so a huge value cannot flood a report.
fn quote(s: &str) -> String {
    const MAX_CHARS: usize = 40;
    match s.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(BYTES_PER_TOKEN)
}

/// serde_json says "expected `:` at line 1 column 15"; the line number is ours, so keep the column only.
fn json_error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let cause = full
        .rfind(" at line ")
        .map_or(full.as_str(), |i| &full[..i]);
    if e.is_eof() {
        format!("not valid JSON: the line ends before the JSON value does ({cause})")
    } else {
        format!("not valid JSON at column {}: {cause}", e.column())
    }
}

impl DatasetValidator {
    /// Checks one line (without its `\n`).
    pub(super) fn check_line(&mut self, raw: &[u8]) {
        let len = raw.len() as u64;
        self.begin_line(len);
        if raw.len() > self.max_line_bytes() {
            self.report_too_long(len);
            return;
        }
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.starts_with(b"\xEF\xBB\xBF") {
            self.error(Code::ByteOrderMark, || {
                "the line starts with a UTF-8 byte order mark (BOM); save the file as UTF-8 without BOM"
                    .into()
            });
            return;
        }
        if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            self.error(Code::BlankLine, || {
                "blank line; every line must hold one JSON record (only a single newline may end the file)"
                    .into()
            });
            return;
        }
        // SIMD UTF-8 validation of the whole line, then a parser that trusts it: std's validator was a
        // quarter of the run time on text with accents and CJK; the precise offset is computed on failure.
        let text = match simdutf8::basic::from_utf8(line) {
            Ok(text) => text,
            Err(_) => {
                let at = std::str::from_utf8(line)
                    .err()
                    .map_or(0, |e| e.valid_up_to())
                    + 1;
                self.error(Code::InvalidUtf8, || {
                    format!("invalid UTF-8 at byte {at} of the line; the file must be UTF-8 text")
                });
                return;
            }
        };
        let record = match parse_record(text) {
            Ok(Shaped::Ok(record)) => record,
            Ok(Shaped::Wrong(kind)) => {
                self.error(Code::NotAnObject, || {
                    format!("the line is {}, not a JSON object", kind.described())
                });
                return;
            }
            Err(e) => {
                self.error(Code::InvalidJson, || json_error_message(&e));
                return;
            }
        };
        let warn_at = self.options.limits.long_record_warn_bytes;
        if len > warn_at {
            self.warning(Code::LongRecord, || {
                format!("the record is {len} bytes long (over {warn_at}); check it is not several records run together")
            });
        }
        self.check_record(&record);
    }

    fn check_record(&mut self, rec: &Record<'_>) {
        for key in &rec.keys.unknown {
            self.error(Code::UnknownKey, || {
                format!(
                    "unknown key {}; a record has only schemaVersion, system and messages",
                    quote(key)
                )
            });
        }
        for key in &rec.keys.duplicate {
            self.error_at(Code::DuplicateKey, key, || {
                format!("key \"{key}\" appears more than once")
            });
        }
        match &rec.schema_version {
            Some(Shaped::Ok(v)) if v == SCHEMA_VERSION => {}
            None => self.error_at(Code::MissingKey, "schemaVersion", || {
                format!("missing required key \"schemaVersion\" (must be \"{SCHEMA_VERSION}\")")
            }),
            Some(Shaped::Ok(v)) => self.error_at(Code::SchemaVersion, "schemaVersion", || {
                format!(
                    "schemaVersion must be \"{SCHEMA_VERSION}\", found {}",
                    quote(v)
                )
            }),
            Some(Shaped::Wrong(kind)) => {
                self.error_at(Code::SchemaVersion, "schemaVersion", || {
                    format!(
                        "schemaVersion must be the string \"{SCHEMA_VERSION}\", found {}",
                        kind.described()
                    )
                })
            }
        }

        // The prompt identity for duplicate detection: system text and every message except a final
        // assistant one (the golden response), with role tags so turn boundaries count.
        let mut prompt = PromptHasher::default();
        let mut input_tokens = 0u64;
        let mut marker_found = false;

        if let Some(system) = &rec.system {
            if let Some(text) =
                self.check_text_list(Some(system), Place::System, Code::InvalidSystem)
            {
                self.scan_markers(text, Place::System, &mut marker_found);
                prompt.write_u8(0);
                prompt.write(text.as_bytes());
                prompt.write_u8(0xFF);
                input_tokens += estimate_tokens(text);
            }
        }

        let messages = match &rec.messages {
            Some(Shaped::Ok(list)) if !list.is_empty() => list,
            None => {
                self.error_at(Code::MissingKey, "messages", || {
                    "missing required key \"messages\"".into()
                });
                return;
            }
            Some(Shaped::Ok(_)) => {
                self.error_at(Code::InvalidMessages, "messages", || {
                    "messages is empty; a record needs at least one user message".into()
                });
                return;
            }
            Some(Shaped::Wrong(kind)) => {
                self.error_at(Code::InvalidMessages, "messages", || {
                    format!("messages must be an array, found {}", kind.described())
                });
                return;
            }
        };

        let mut order_reported = false;
        let mut user_turns = 0u64;
        let mut last_role = None;
        let mut last_tokens = 0u64;
        let mut before_last = prompt.clone();
        for (i, message) in messages.iter().enumerate() {
            let expected = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            let message = match message {
                Shaped::Ok(message) => message,
                Shaped::Wrong(kind) => {
                    let kind = *kind;
                    self.error_at(Code::InvalidMessages, format_args!("messages[{i}]"), || {
                        format!(
                            "messages[{i}] must be an object {{\"role\", \"content\"}}, found {}",
                            kind.described()
                        )
                    });
                    last_role = None;
                    continue;
                }
            };
            let role = self.check_message_keys_and_role(message, i);
            if let Some(role) = role {
                if role != expected && !order_reported {
                    order_reported = true;
                    self.error_at(Code::RoleOrder, format_args!("messages[{i}].role"), || {
                        format!(
                            "messages[{i}].role is \"{}\" but \"{}\" was expected: roles alternate, starting with user",
                            role.as_str(),
                            expected.as_str()
                        )
                    });
                }
            }
            last_role = role;
            if role == Some(Role::User) {
                user_turns += 1;
            }
            let text = match &message.content {
                None => {
                    self.error_at(Code::InvalidContent, format_args!("messages[{i}]"), || {
                        format!("messages[{i}] has no content")
                    });
                    None
                }
                Some(content) => {
                    self.check_text_list(Some(content), Place::Content(i), Code::InvalidContent)
                }
            };
            let Some(text) = text else {
                continue;
            };
            self.scan_markers(text, Place::Content(i), &mut marker_found);
            if text.trim().is_empty() {
                match role {
                    Some(Role::User) => self.error_at(Code::EmptyPrompt, format_args!("messages[{i}]"), || {
                        format!("messages[{i}] is a user prompt with empty or whitespace-only text")
                    }),
                    Some(Role::Assistant) => self.warning(Code::EmptyResponse, || {
                        format!("messages[{i}] is an assistant response with empty or whitespace-only text")
                    }),
                    None => {}
                }
            }
            before_last = prompt.clone();
            prompt.write_u8(if role == Some(Role::Assistant) { 2 } else { 1 });
            prompt.write(text.as_bytes());
            prompt.write_u8(0xFF);
            last_tokens = estimate_tokens(text);
            input_tokens += last_tokens;
        }

        if !self.options.allow_multi_turn && messages.len() > 2 {
            let n = messages.len();
            let student = match &self.options.student {
                Some(s) => format!("student {s}"),
                None => "a dataset checked without a student".into(),
            };
            self.error_at(Code::MultiTurn, "messages", || {
                format!(
                    "the record has {n} messages but {student} takes single-turn records only ([user] or [user, assistant]); multi-turn records are for Amazon Nova students"
                )
            });
        }

        if self.line_invalid {
            return;
        }
        // Statistics and duplicate detection describe what Bedrock would train on: valid records only.
        let labelled = last_role == Some(Role::Assistant);
        let (prompt_hash, output_tokens) = if labelled {
            input_tokens -= last_tokens;
            (before_last.finish(), last_tokens)
        } else {
            (prompt.finish(), 0)
        };
        let stats = &mut self.stats;
        if labelled {
            stats.labelled += 1;
        } else {
            stats.unlabelled += 1;
        }
        if user_turns > 1 {
            stats.multi_turn += 1;
        }
        if rec.system.is_some() {
            stats.with_system_prompt += 1;
        }
        stats.estimated_input_tokens += input_tokens;
        stats.estimated_output_tokens += output_tokens;
        stats.max_record_estimated_tokens = stats
            .max_record_estimated_tokens
            .max(input_tokens + output_tokens);
        if let Some(hashes) = self.prompt_hashes.as_mut() {
            hashes.push(prompt_hash);
        }
        if let Some(&first) = self.seen_prompts.get(&prompt_hash) {
            self.stats.duplicate_prompts += 1;
            self.warning(Code::DuplicatePrompt, || {
                format!("the prompt repeats the one on line {first}")
            });
        } else if self.seen_prompts.len() < DUPLICATE_TRACKING_CAP {
            self.seen_prompts.insert(prompt_hash, self.line);
        }
    }

    /// Unknown or repeated keys of a message, and its role.
    fn check_message_keys_and_role(&mut self, message: &Message<'_>, i: usize) -> Option<Role> {
        for key in &message.keys.unknown {
            self.error_at(Code::UnknownKey, format_args!("messages[{i}]"), || {
                format!(
                    "messages[{i}] has unknown key {}; a message has only role and content",
                    quote(key)
                )
            });
        }
        for key in &message.keys.duplicate {
            self.error_at(
                Code::DuplicateKey,
                format_args!("messages[{i}].{key}"),
                || format!("messages[{i}].{key} appears more than once"),
            );
        }
        match &message.role {
            Some(Shaped::Ok(r)) if r == "user" => Some(Role::User),
            Some(Shaped::Ok(r)) if r == "assistant" => Some(Role::Assistant),
            Some(Shaped::Ok(r)) => {
                self.error_at(
                    Code::InvalidRole,
                    format_args!("messages[{i}].role"),
                    || {
                        format!(
                            "messages[{i}].role must be \"user\" or \"assistant\", found {}",
                            quote(r)
                        )
                    },
                );
                None
            }
            Some(Shaped::Wrong(kind)) => {
                let kind = *kind;
                self.error_at(
                    Code::InvalidRole,
                    format_args!("messages[{i}].role"),
                    || {
                        format!(
                            "messages[{i}].role must be \"user\" or \"assistant\", found {}",
                            kind.described()
                        )
                    },
                );
                None
            }
            None => {
                self.error_at(
                    Code::InvalidRole,
                    format_args!("messages[{i}].role"),
                    || format!("messages[{i}] has no role"),
                );
                None
            }
        }
    }

    /// `[{"text": string}]` exactly (an extra `"type": "text"` is tolerated). Returns the text when it
    /// is a string, even if the list has other problems, so later checks still see it.
    fn check_text_list<'r>(
        &mut self,
        list: Option<&'r TextList<'r>>,
        place: Place,
        code: Code,
    ) -> Option<&'r str> {
        let blocks = match list? {
            Shaped::Ok(blocks) => blocks,
            Shaped::Wrong(kind) => {
                let kind = *kind;
                self.error_at(code, place, || {
                    format!(
                        "{place} must be an array holding one {{\"text\": ...}} object, found {}",
                        kind.described()
                    )
                });
                return None;
            }
        };
        if blocks.len() != 1 {
            let n = blocks.len();
            self.error_at(code, place, || {
                if n == 0 {
                    format!("{place} is empty; it must hold exactly one {{\"text\": ...}} object")
                } else {
                    format!("{place} holds {n} items; it must hold exactly one {{\"text\": ...}} object (images and other content are not supported)")
                }
            });
        }
        let block = match blocks.first()? {
            Shaped::Ok(block) => block,
            Shaped::Wrong(kind) => {
                let kind = *kind;
                self.error_at(code, format_args!("{place}[0]"), || {
                    format!(
                        "{place}[0] must be an object {{\"text\": ...}}, found {}",
                        kind.described()
                    )
                });
                return None;
            }
        };
        for key in &block.keys.unknown {
            self.error_at(code, format_args!("{place}[0]"), || {
                format!(
                    "{place}[0] has unknown key {}; only \"text\" (and \"type\": \"text\") is allowed",
                    quote(key)
                )
            });
        }
        for key in &block.keys.duplicate {
            self.error_at(Code::DuplicateKey, format_args!("{place}[0].{key}"), || {
                format!("{place}[0].{key} appears more than once")
            });
        }
        match &block.kind {
            None => {}
            Some(Shaped::Ok(k)) if k == "text" => {}
            Some(kind) => {
                let found = match kind {
                    Shaped::Ok(k) => quote(k),
                    Shaped::Wrong(t) => t.described().to_string(),
                };
                self.error_at(code, format_args!("{place}[0].type"), || {
                    format!("{place}[0].type must be \"text\" when present, found {found}")
                });
            }
        }
        match &block.text {
            Some(Shaped::Ok(text)) => Some(text.as_ref()),
            Some(Shaped::Wrong(kind)) => {
                let kind = *kind;
                self.error_at(code, format_args!("{place}[0].text"), || {
                    format!(
                        "{place}[0].text must be a string, found {}",
                        kind.described()
                    )
                });
                None
            }
            None => {
                self.error_at(code, format_args!("{place}[0]"), || {
                    format!("{place}[0] has no \"text\"")
                });
                None
            }
        }
    }

    /// Warns once per line about the first reserved marker found.
    fn scan_markers(&mut self, text: &str, place: Place, already: &mut bool) {
        if *already {
            return;
        }
        if let Some(marker) = find_reserved_marker(text) {
            *already = true;
            self.warning(Code::ReservedMarker, || {
                format!("{place}[0].text contains the reserved marker \"{marker}\", which Amazon Nova rejects in training text")
            });
        }
    }
}
