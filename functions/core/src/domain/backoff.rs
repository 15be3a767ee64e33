//! Poll backoff: start at a configured wait, double each attempt, cap.

/// Wait before poll number `attempt` (0-based): `initial * 2^attempt`, capped at `max`.
pub fn next_wait_seconds(initial: u64, max: u64, attempt: u32) -> u64 {
    let factor = 1u64.checked_shl(attempt.min(63)).unwrap_or(u64::MAX);
    initial.saturating_mul(factor).min(max).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        assert_eq!(next_wait_seconds(60, 900, 0), 60);
        assert_eq!(next_wait_seconds(60, 900, 1), 120);
        assert_eq!(next_wait_seconds(60, 900, 4), 900);
        assert_eq!(next_wait_seconds(60, 900, 200), 900);
        assert_eq!(next_wait_seconds(0, 900, 3), 1);
    }
}
