//! The plain-text rendering of a message: the SNS subject (ASCII, one line, at most
//! [`MAX_SUBJECT_CHARS`]) and body.

use super::{MessageContent, Milestone, MAX_SUBJECT_CHARS};

/// "Distillery: Dataset rejected - my-data (run-0123456789abcdef0123)", ASCII, ≤ 99 chars; the
/// dataset part is shortened first so the run id survives.
pub fn subject(d: &MessageContent) -> String {
    let head = format!("Distillery: {} - ", d.title);
    let tail = d
        .run_id
        .as_ref()
        .map(|id| format!(" ({id})"))
        .unwrap_or_default();
    let object = ascii_line(&d.subject_object);
    let room = MAX_SUBJECT_CHARS.saturating_sub(head.len() + tail.len());
    let object = if object.chars().count() > room {
        truncate_chars(&object, room)
    } else {
        object
    };
    let s = ascii_line(&format!("{head}{object}{tail}"));
    truncate_chars(&s, MAX_SUBJECT_CHARS)
}

/// The plain-text body (SNS, e-mail): summary, run, fields, list, links, notes, signature.
pub fn body(d: &MessageContent) -> String {
    let mut out = String::new();
    out.push_str(&d.summary.replace('`', ""));
    out.push_str("\n\n");
    if let Some(id) = &d.run_id {
        out.push_str(&format!("Run: {id}\n"));
    }
    for (label, value) in &d.fields {
        out.push_str(&format!("{label}: {value}\n"));
    }
    if !d.list.is_empty() {
        out.push_str(&format!("\n{}:\n", d.list_title));
        for item in &d.list {
            out.push_str(&format!("  - {item}\n"));
        }
    }
    if !d.links.is_empty() {
        out.push('\n');
        for (label, url) in &d.links {
            out.push_str(&format!("{label}: {url}\n"));
        }
    }
    for note in &d.notes {
        out.push_str(&format!("\n{note}\n"));
    }
    out.push_str(&format!(
        "\n-- \nDistillery, milestone {}, region {}\n",
        d.milestone.map(Milestone::as_str).unwrap_or("unknown"),
        d.region
    ));
    out
}

/// Whitespace runs (line breaks included) as one space.
pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Printable ASCII on one line: other characters become '?', whitespace runs one space.
fn ascii_line(s: &str) -> String {
    one_line(s)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// At most `max` characters, ending in "..." when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(3);
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(&"..."[..max.min(3)]);
    out
}
