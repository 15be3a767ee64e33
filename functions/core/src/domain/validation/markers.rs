//! Finding Nova's reserved markers in text.
//!
//! Every marker contains one of three rare bytes: `:` ends `User:`, `Bot:`, `Assistant:`, `System:`;
//! `<` starts `<image>`, `<video>`; `[` starts `[EOS]`. Searching for those three bytes with SIMD
//! (`memchr3`) and checking the neighbourhood of each hit is several times faster on prose than a general
//! multi-pattern automaton (aho-corasick measured about 330 MB/s on the benchmark data, because capital
//! letters that start sentences keep its prefilter busy), and this scan runs over every byte of text.

use super::RESERVED_MARKERS;

/// Markers that end at a `:` (the text before the colon), and those that start at `<` or `[`.
const BEFORE_COLON: [&str; 4] = ["User", "Bot", "Assistant", "System"];
const FROM_BRACKET: [&str; 3] = ["<image>", "<video>", "[EOS]"];

/// The first reserved marker in `text` (by position), if any.
pub(crate) fn find_reserved_marker(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    for at in memchr::memchr3_iter(b':', b'<', b'[', bytes) {
        let found = if bytes[at] == b':' {
            BEFORE_COLON
                .iter()
                .find(|m| bytes[..at].ends_with(m.as_bytes()))
                .map(|m| (at - m.len(), *m))
        } else {
            FROM_BRACKET
                .iter()
                .find(|m| bytes[at..].starts_with(m.as_bytes()))
                .map(|m| (at, *m))
        };
        if let Some((_, stem)) = found {
            // Return the canonical marker text (with its colon) from the public list.
            return RESERVED_MARKERS
                .iter()
                .copied()
                .find(|m| m.starts_with(stem));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_marker_and_nothing_in_plain_text() {
        for marker in RESERVED_MARKERS {
            let text = format!("before {marker} after");
            assert_eq!(find_reserved_marker(&text), Some(marker), "{text}");
            assert_eq!(find_reserved_marker(marker), Some(marker));
        }
        for clean in [
            "",
            "Users: no",
            "a: b < c [d] User : x",
            "<imag> <videos [EOS",
            "Système: ok",
        ] {
            assert_eq!(find_reserved_marker(clean), None, "{clean}");
        }
        // The first one wins when several appear.
        assert_eq!(find_reserved_marker("[EOS] then Bot:"), Some("[EOS]"));
        assert_eq!(find_reserved_marker("Bot: then [EOS]"), Some("Bot:"));
    }

    #[test]
    fn agrees_with_a_naive_search() {
        let texts = [
            "The User: said <image> and [EOS]",
            "no markers here: just colons: and [brackets] <tags>",
            "AssistantSystem: x",
            "日本語 System: ü <video>",
        ];
        for t in texts {
            let naive = RESERVED_MARKERS
                .iter()
                .filter_map(|m| t.find(m).map(|i| (i, *m)))
                .min()
                .map(|(_, m)| m);
            assert_eq!(find_reserved_marker(t), naive, "{t}");
        }
    }
}
