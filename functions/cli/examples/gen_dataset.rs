//! Writes a large, realistic bedrock-conversation-2024 dataset for the validator benchmark.
//!
//! `cargo run --release -p distillery-cli --example gen_dataset -- OUT.jsonl [RECORDS] [SEED]`
//!
//! Records mix what real distillation sets hold: optional system prompts, prompts of a sentence to a few
//! paragraphs, 70% labelled with a golden response, 10% multi-turn, text with quotes, newlines and
//! non-ASCII characters (so the parser meets escapes, not only plain ASCII). Deterministic per seed.

use std::io::{BufWriter, Write};

const WORDS: &[&str] = &[
    "the",
    "model",
    "customer",
    "order",
    "invoice",
    "shipping",
    "refund",
    "policy",
    "account",
    "password",
    "summary",
    "report",
    "quarterly",
    "revenue",
    "analysis",
    "product",
    "feature",
    "release",
    "latency",
    "database",
    "query",
    "index",
    "cluster",
    "region",
    "throughput",
    "request",
    "response",
    "error",
    "retry",
    "timeout",
    "contract",
    "clause",
    "liability",
    "patient",
    "symptom",
    "dosage",
    "schedule",
    "meeting",
    "agenda",
    "budget",
    "forecast",
    "café",
    "naïve",
    "résumé",
    "—",
    "日本語",
    "données",
    "straße",
    "and",
    "of",
    "to",
    "in",
    "for",
    "with",
    "on",
    "is",
    "was",
    "are",
    "be",
    "this",
    "that",
    "it",
    "as",
    "at",
    "by",
];

const SYSTEMS: &[&str] = &[
    "You are a helpful support assistant for an online store. Answer briefly and politely.",
    "You summarise documents for busy executives. Use plain language.",
    "You are a careful assistant for clinicians. Never invent dosages.",
    "Classify the user's message and explain your reasoning in one paragraph.",
];

/// splitmix64: tiny, fast, good enough to vary lengths and words.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Prose of about `bytes` bytes, with sentences, the odd quotation and paragraph break.
fn prose(rng: &mut Rng, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 16);
    let mut sentence_len = 0;
    while s.len() < bytes {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        if sentence_len == 0 {
            let mut c = w.chars();
            if let Some(first) = c.next() {
                s.extend(first.to_uppercase());
                s.push_str(c.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(w);
        }
        sentence_len += 1;
        if sentence_len > 6 && rng.chance(12) {
            match rng.below(10) {
                0 => s.push_str("?\n\n"),
                1 => s.push_str(". \"Quoted,\" they said. "),
                _ => s.push_str(". "),
            }
            sentence_len = 0;
        }
    }
    s
}

fn text_block(text: &str) -> String {
    format!(
        "[{{\"text\":{}}}]",
        serde_json::to_string(text).expect("strings serialise")
    )
}

fn message(role: &str, text: &str) -> String {
    format!("{{\"role\":\"{role}\",\"content\":{}}}", text_block(text))
}

fn record(rng: &mut Rng, i: u64) -> String {
    let mut messages = Vec::with_capacity(4);
    let turns = if rng.chance(10) { 2 } else { 1 };
    for turn in 0..turns {
        let prompt_len = 60 + rng.below(800) as usize;
        let prompt = format!("Request {i}.{turn}: {}", prose(rng, prompt_len));
        messages.push(message("user", &prompt));
        let last = turn + 1 == turns;
        if !last || rng.chance(70) {
            let answer_len = 60 + rng.below(560) as usize;
            messages.push(message("assistant", &prose(rng, answer_len)));
        }
    }
    let system = if rng.chance(50) {
        let s = SYSTEMS[rng.below(SYSTEMS.len() as u64) as usize];
        format!(",\"system\":{}", text_block(s))
    } else {
        String::new()
    };
    format!(
        "{{\"schemaVersion\":\"bedrock-conversation-2024\"{system},\"messages\":[{}]}}",
        messages.join(",")
    )
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: gen_dataset OUT.jsonl [RECORDS (default 262144)] [SEED]");
        std::process::exit(2);
    };
    let records: u64 = args
        .get(1)
        .map_or(Ok(262_144), |s| s.parse())
        .unwrap_or_else(|_| {
            eprintln!("gen_dataset: RECORDS must be a whole number");
            std::process::exit(2)
        });
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(42);
    let mut rng = Rng(seed);
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let mut bytes = 0u64;
    for i in 0..records {
        let line = record(&mut rng, i);
        bytes += line.len() as u64 + 1;
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    eprintln!("gen_dataset: wrote {records} records, {bytes} bytes to {out}");
    Ok(())
}
