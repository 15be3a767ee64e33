//! A fast 64-bit hash for duplicate-prompt detection.
//!
//! std's SipHash was a tenth of the validator's run time. Prompts are not adversarial keys (a collision
//! only produces a spurious duplicate warning, never a wrong verdict), so a folded-multiply hash over 16
//! bytes per step, as in wyhash/foldhash, is enough and several times faster. Deterministic, so the same
//! dataset always yields the same warnings.

use std::hash::Hasher;

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xD6E8_FEB8_6659_FD93;

/// The 128-bit product of `a` and `b`, folded to 64 bits.
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

fn word(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(buf)
}

#[derive(Clone, Default)]
pub(crate) struct PromptHasher {
    state: u64,
    len: u64,
}

impl Hasher for PromptHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(16);
        for c in &mut chunks {
            let (a, b) = c.split_at(8);
            self.state = fold(word(a) ^ self.state ^ K1, word(b) ^ K2);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let (a, b) = rest.split_at(rest.len().min(8));
            self.state = fold(word(a) ^ self.state ^ K1, word(b) ^ K2 ^ rest.len() as u64);
        }
    }

    fn finish(&self) -> u64 {
        fold(self.state ^ K2, self.len ^ K1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash(parts: &[&[u8]]) -> u64 {
        let mut h = PromptHasher::default();
        for p in parts {
            h.write(p);
        }
        h.finish()
    }

    #[test]
    fn equal_inputs_hash_equal_and_small_changes_differ() {
        assert_eq!(hash(&[b"hello world"]), hash(&[b"hello world"]));
        let mut seen = HashSet::new();
        // Every prefix of a text, and single-byte variants: no collisions expected among them.
        let text = b"What is the refund policy for orders shipped to another region? Please answer briefly.";
        for n in 0..=text.len() {
            assert!(seen.insert(hash(&[&text[..n]])), "prefix {n} collided");
        }
        for i in 0..text.len() {
            let mut t = text.to_vec();
            t[i] ^= 1;
            assert!(seen.insert(hash(&[&t])), "flip at {i} collided");
        }
        // Trailing zero bytes are not lost to padding.
        assert_ne!(hash(&[b"ab"]), hash(&[b"ab\0"]));
    }
}
