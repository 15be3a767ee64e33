//! A run's place in the launch queue relative to others: `x-amz-meta-distillery-priority`.
//!
//! Queued runs are offered job slots first by priority, then first in, first out. Anyone who can
//! upload may lower their own run's priority (`low`: it lets everything else go first); jumping the
//! queue (`high`) is the stack owner's to grant, with `ALLOW_OVERRIDES=all`, like every setting that
//! changes what other teams' runs get.

use serde::{Deserialize, Serialize};

use crate::domain::errors::{ErrorType, StepError};

/// The S3 user-metadata key (without `x-amz-meta-`).
pub const PRIORITY_METADATA_KEY: &str = "distillery-priority";

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum QueuePriority {
    /// Offered a slot before any `normal` or `low` run.
    High,
    #[default]
    Normal,
    /// Offered a slot only when no `high` or `normal` run waits.
    Low,
}

impl QueuePriority {
    pub const ACCEPTED: &'static str = "high, normal or low";

    pub fn as_str(self) -> &'static str {
        match self {
            QueuePriority::High => "high",
            QueuePriority::Normal => "normal",
            QueuePriority::Low => "low",
        }
    }

    pub fn parse(s: &str) -> Option<QueuePriority> {
        match s.trim().to_ascii_lowercase().as_str() {
            "high" => Some(QueuePriority::High),
            "normal" => Some(QueuePriority::Normal),
            "low" => Some(QueuePriority::Low),
            _ => None,
        }
    }

    pub fn is_normal(&self) -> bool {
        *self == QueuePriority::Normal
    }

    /// The run's priority from its upload's metadata value (`None`: normal). `high` needs
    /// `allow_high` (`ALLOW_OVERRIDES=all`); a value that is not a priority is refused. Errors name
    /// the key.
    pub fn resolve(metadata: Option<&str>, allow_high: bool) -> Result<QueuePriority, StepError> {
        let Some(raw) = metadata.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(QueuePriority::Normal);
        };
        let origin = format!("S3 metadata x-amz-meta-{PRIORITY_METADATA_KEY}");
        let priority = QueuePriority::parse(raw).ok_or_else(|| {
            StepError::config(format!(
                "the queue priority must be {}, got '{raw}'; the value came from {origin}",
                Self::ACCEPTED
            ))
        })?;
        if priority == QueuePriority::High && !allow_high {
            return Err(StepError::new(
                ErrorType::GuardrailViolation,
                format!(
                    "priority 'high' puts this run ahead of every other team's in the launch queue, which this stack does not allow from metadata (ALLOW_OVERRIDES is not 'all'); use 'normal' or 'low'; the value came from {origin}"
                ),
            ));
        }
        Ok(priority)
    }
}

impl std::fmt::Display for QueuePriority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_may_lower_a_run_and_raise_it_only_when_the_stack_allows() {
        assert_eq!(
            QueuePriority::resolve(None, false).unwrap(),
            QueuePriority::Normal
        );
        assert_eq!(
            QueuePriority::resolve(Some(" "), false).unwrap(),
            QueuePriority::Normal
        );
        assert_eq!(
            QueuePriority::resolve(Some("LOW"), false).unwrap(),
            QueuePriority::Low
        );
        assert_eq!(
            QueuePriority::resolve(Some("high"), true).unwrap(),
            QueuePriority::High
        );
        let e = QueuePriority::resolve(Some("high"), false).unwrap_err();
        assert_eq!(e.error_type, ErrorType::GuardrailViolation);
        assert!(
            e.message.contains("x-amz-meta-distillery-priority"),
            "{}",
            e.message
        );
        let e = QueuePriority::resolve(Some("urgent"), true).unwrap_err();
        assert_eq!(e.error_type, ErrorType::ConfigInvalid);
        assert!(
            e.message.contains("got 'urgent'")
                && e.message.contains("x-amz-meta-distillery-priority")
        );
        assert!(
            QueuePriority::High < QueuePriority::Normal
                && QueuePriority::Normal < QueuePriority::Low
        );
    }
}
