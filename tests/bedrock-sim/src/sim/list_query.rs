//! The query parameters shared by the List operations (filters, sort, pagination).

use chrono::{DateTime, Utc};

use crate::validate::Violations;
use crate::wire::ApiError;

/// The query parameters shared by the List operations.
pub(super) struct ListQuery {
    pub(super) status: Option<String>,
    pub(super) name_contains: Option<String>,
    pub(super) after: Option<DateTime<Utc>>,
    pub(super) before: Option<DateTime<Utc>>,
    pub(super) max_results: usize,
    pub(super) offset: usize,
    pub(super) descending: bool,
}

impl ListQuery {
    /// The job and throughput lists name their time filters `creationTimeAfter`/`creationTimeBefore`.
    pub(super) fn parse(query: &[(String, String)], statuses: &[&str]) -> Result<Self, ApiError> {
        Self::parse_with(query, statuses, "creationTimeAfter", "creationTimeBefore")
    }

    /// Like [`ListQuery::parse`] with the time filters under other names (ListCustomModelDeployments
    /// says `createdAfter`/`createdBefore`).
    pub(super) fn parse_with(
        query: &[(String, String)],
        statuses: &[&str],
        after_key: &str,
        before_key: &str,
    ) -> Result<Self, ApiError> {
        let mut v = Violations::default();
        let mut q = ListQuery {
            status: None,
            name_contains: None,
            after: None,
            before: None,
            max_results: 1000,
            offset: 0,
            descending: true,
        };
        let time = |v: &mut Violations, key: &str, s: &str| match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                v.push(format!(
                    "Value '{s}' at '{key}' failed to satisfy constraint: Member must be an RFC 3339 date-time"
                ));
                None
            }
        };
        for (key, value) in query {
            match key.as_str() {
                "statusEquals" => {
                    v.check_enum("statusEquals", value, statuses);
                    q.status = Some(value.clone());
                }
                "nameContains" => {
                    v.check("nameContains", value, 1, 63, None);
                    q.name_contains = Some(value.clone());
                }
                "maxResults" => match value.parse::<usize>() {
                    Ok(n @ 1..=1000) => q.max_results = n,
                    _ => v.push(format!(
                        "Value '{value}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 1000"
                    )),
                },
                "nextToken" => match value.strip_prefix("page-").and_then(|n| n.parse().ok()) {
                    Some(n) => q.offset = n,
                    None => return Err(ApiError::validation(format!("Invalid nextToken '{value}'"))),
                },
                "sortBy" => v.check_enum("sortBy", value, &["CreationTime"]),
                "sortOrder" => {
                    v.check_enum("sortOrder", value, &["Ascending", "Descending"]);
                    q.descending = value != "Ascending";
                }
                k if k == after_key => q.after = time(&mut v, key, value),
                k if k == before_key => q.before = time(&mut v, key, value),
                _ => {}
            }
        }
        v.into_result()?;
        Ok(q)
    }

    pub(super) fn admits(&self, name: &str, created: DateTime<Utc>) -> bool {
        self.name_contains
            .as_deref()
            .is_none_or(|n| name.contains(n))
            && self.after.is_none_or(|a| created > a)
            && self.before.is_none_or(|b| created < b)
    }

    pub(super) fn page<'a, T>(&self, items: &'a [T]) -> (&'a [T], Option<String>) {
        let start = self.offset.min(items.len());
        let end = (start + self.max_results).min(items.len());
        let next = (end < items.len()).then(|| format!("page-{end}"));
        (&items[start..end], next)
    }
}
