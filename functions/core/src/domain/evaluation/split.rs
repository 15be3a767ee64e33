//! Splitting a validated dataset's bytes into the training snapshot and the held-out file, chunk by
//! chunk (sans-I/O: the caller reads the chunks and writes what comes out).
//!
//! - A training line goes out byte for byte, newline (and any `\r`) included, so the training
//!   snapshot is the upload minus the held-out lines and nothing else changes.
//! - A held-out line becomes `{"index":<i>,"record":<the line>}\n` in `heldout.jsonl` (what the
//!   evaluator's `HeldOutLine` reads): the line is spliced in verbatim, a trailing `\r` dropped. It
//!   is only ever called on bytes the validator just accepted (one JSON object per line, no blank
//!   lines, SHA-256 checked equal to the validated bytes), so no re-parse is needed to keep the
//!   output valid JSON.
//!
//! Memory: a training line is never buffered; a held-out line is, and a valid dataset's lines are
//! at most `maxLineBytes` long.

/// Splits lines: the ones whose 0-based index is in `held` (ascending) are held out.
pub struct LineSplitter<'a> {
    held: &'a [usize],
    /// Position in `held` of the next held-out index not yet reached.
    next_held: usize,
    /// Index of the line being read.
    line: usize,
    /// Whether the line being read is held out.
    holding: bool,
    /// The held-out line being read (empty otherwise).
    carry: Vec<u8>,
    /// Whether any byte of the line being read was seen (a last line without a newline).
    partial: bool,
}

impl<'a> LineSplitter<'a> {
    pub fn new(held: &'a [usize]) -> Self {
        let mut s = LineSplitter {
            held,
            next_held: 0,
            line: 0,
            holding: false,
            carry: Vec::new(),
            partial: false,
        };
        s.holding = s.held.first() == Some(&0);
        s
    }

    /// Feeds the next chunk; appends what goes to each file to `training` and `held_out`.
    pub fn push(&mut self, mut chunk: &[u8], training: &mut Vec<u8>, held_out: &mut Vec<u8>) {
        while !chunk.is_empty() {
            let nl = memchr::memchr(b'\n', chunk);
            let end = nl.map_or(chunk.len(), |i| i + 1);
            let (part, rest) = chunk.split_at(end);
            chunk = rest;
            if self.holding {
                self.carry.extend_from_slice(part);
            } else {
                training.extend_from_slice(part);
            }
            self.partial = true;
            if nl.is_some() {
                self.end_line(held_out);
            }
        }
    }

    /// Ends the input (a last line without a newline is completed); returns the number of lines.
    pub fn finish(mut self, held_out: &mut Vec<u8>) -> usize {
        if self.partial {
            self.end_line(held_out);
        }
        self.line
    }

    fn end_line(&mut self, held_out: &mut Vec<u8>) {
        if self.holding {
            let line = self.carry.strip_suffix(b"\n").unwrap_or(&self.carry);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            held_out.extend_from_slice(format!("{{\"index\":{},\"record\":", self.line).as_bytes());
            held_out.extend_from_slice(line);
            held_out.extend_from_slice(b"}\n");
            self.carry.clear();
            self.next_held += 1;
        }
        self.line += 1;
        self.partial = false;
        self.holding = self.held.get(self.next_held) == Some(&self.line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `input` fed in chunks of `size` bytes.
    fn split(input: &[u8], held: &[usize], size: usize) -> (Vec<u8>, Vec<u8>, usize) {
        let mut s = LineSplitter::new(held);
        let (mut t, mut h) = (Vec::new(), Vec::new());
        for c in input.chunks(size) {
            s.push(c, &mut t, &mut h);
        }
        let n = s.finish(&mut h);
        (t, h, n)
    }

    #[test]
    fn held_out_lines_are_wrapped_and_the_rest_copied_byte_for_byte() {
        let input = b"{\"a\":0}\n{\"a\":1}\r\n{\"a\": 2}\n{\"a\":3}\n{\"a\":4}";
        for size in [1, 2, 3, 7, 100] {
            let (t, h, n) = split(input, &[1, 4], size);
            assert_eq!(n, 5, "chunk size {size}");
            assert_eq!(
                t, b"{\"a\":0}\n{\"a\": 2}\n{\"a\":3}\n",
                "chunk size {size}"
            );
            assert_eq!(
                String::from_utf8(h).unwrap(),
                "{\"index\":1,\"record\":{\"a\":1}}\n{\"index\":4,\"record\":{\"a\":4}}\n",
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn the_first_line_and_a_last_line_without_newline() {
        let (t, h, n) = split(b"{\"x\":0}\n{\"x\":1}", &[0], 4);
        assert_eq!((t.as_slice(), n), (&b"{\"x\":1}"[..], 2));
        assert_eq!(h, b"{\"index\":0,\"record\":{\"x\":0}}\n");
        // A final newline is not a line of its own.
        let (t, h, n) = split(b"{\"x\":0}\n{\"x\":1}\n", &[1], 5);
        assert_eq!((t.as_slice(), n), (&b"{\"x\":0}\n"[..], 2));
        assert_eq!(h, b"{\"index\":1,\"record\":{\"x\":1}}\n");
    }

    #[test]
    fn nothing_held_copies_everything() {
        let input = b"{\"x\":0}\r\n{\"x\":1}\n";
        let (t, h, n) = split(input, &[], 3);
        assert_eq!((t.as_slice(), h.len(), n), (&input[..], 0, 2));
        let (t, h, n) = split(b"", &[], 3);
        assert_eq!((t.len(), h.len(), n), (0, 0, 0));
    }
}
