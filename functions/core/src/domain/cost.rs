//! What a run will cost, estimated before launch, and the budget that may refuse it.
//!
//! The estimate is a range, because what the teacher writes is unknown until it has written it:
//! - low: the prompts and the given answers as they are (the teacher is assumed to write answers
//!   as long as the given ones, and nothing for prompts without one);
//! - high: every prompt answered at the full `maxResponseLength`.
//!
//! Line items: teacher generation (prompt tokens in, answer tokens out, at the teacher's on-demand
//! rates, which is how Bedrock bills distillation's synthetic data), student training (prompt +
//! answer tokens at the student's training price, one pass: distillation exposes no epoch count),
//! one month of custom model storage, and, when serving is provisioned, Provisioned Throughput for
//! the first `PT_TTL_HOURS` hours. A figure missing from the price table counts as zero and is named,
//! so a reader knows the total is short.

use serde::{Deserialize, Serialize};

use super::catalog::{PriceFigure, Prices};
use super::errors::{ErrorType, StepError};
use super::settings::{RunSettings, ServingMode};

/// The stack variable holding the budget (unset: no budget).
pub const MAX_RUN_COST_VAR: &str = "MAX_RUN_COST_USD";
/// The S3 user-metadata key (without `x-amz-meta-`) that may lower the budget for one dataset.
pub const MAX_RUN_COST_METADATA_KEY: &str = "distillery-max-run-cost-usd";
/// The stack variable: how long no-commitment Provisioned Throughput serves before Distillery
/// deletes it (hours after it goes into service; fractions allowed), and the hours the estimate counts.
pub const PT_TTL_HOURS_VAR: &str = "PT_TTL_HOURS";
pub const DEFAULT_PT_TTL_HOURS: f64 = 24.0;
/// The S3 user-metadata key (without `x-amz-meta-`) that may shorten `PT_TTL_HOURS` for one dataset.
pub const PT_TTL_METADATA_KEY: &str = "distillery-pt-ttl-hours";
/// The code a run over budget is rejected with.
pub const OVER_BUDGET: &str = "over_budget";

/// The validator's token figures for the valid records (see `DatasetStats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenCounts {
    /// Valid records: each is one prompt the teacher answers.
    pub prompts: u64,
    /// Estimated tokens of the prompts (system + every message but a final assistant one).
    pub prompt_tokens: u64,
    /// Estimated tokens of the given answers (final assistant messages).
    pub given_answer_tokens: u64,
}

/// What is being estimated besides the tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct CostInputs<'a> {
    pub settings: &'a RunSettings,
    /// The Region whose prices apply (the stack's, else the pair's).
    pub region: &'a str,
    pub pt_ttl_hours: f64,
}

/// One line of the estimate. Serialised in snake_case everywhere (run record, report, CLI JSON),
/// so the one shape is documented once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostLineItem {
    /// `teacher_generation`, `student_training`, `model_storage` or `serving`.
    pub item: String,
    pub low_usd: f64,
    pub high_usd: f64,
    /// How the figure was computed (tokens and rates), for people.
    pub basis: String,
    /// Whether every price this line uses was confirmed (a missing price is not).
    pub confirmed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    pub currency: String,
    pub low_usd: f64,
    pub high_usd: f64,
    pub line_items: Vec<CostLineItem>,
    /// Every price used was confirmed (and none was missing).
    pub confirmed: bool,
    /// The prices that were not confirmed, e.g. `amazon.nova-pro-v1:0 on-demand input (as of 2026-11-29)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<String>,
    /// Prices the table lacks; counted as zero, so the figures are short by them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    pub region: String,
    /// The budget the high figure was checked against, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    #[serde(default)]
    pub over_budget: bool,
}

/// Collects prices as they are used, remembering which were unconfirmed or missing.
struct Rates<'a> {
    unconfirmed: Vec<String>,
    missing: Vec<String>,
    currency: &'a str,
}

impl Rates<'_> {
    /// The figure's price (0 when missing) and whether it is confirmed.
    fn take(&mut self, figure: Option<&PriceFigure>, what: String) -> (f64, bool) {
        match figure {
            Some(f) => {
                if !f.confirmed {
                    self.unconfirmed.push(format!("{what} (as of {})", f.as_of));
                }
                (f.usd, f.confirmed)
            }
            None => {
                self.missing.push(what);
                (0.0, false)
            }
        }
    }
}

/// Dollars for `tokens` at `per_1k` per 1,000 tokens.
fn per_1k(tokens: u64, per_1k: f64) -> f64 {
    tokens as f64 / 1000.0 * per_1k
}

/// The estimate for a dataset's tokens under these settings and prices.
pub fn estimate(tokens: &TokenCounts, inputs: &CostInputs<'_>, prices: &Prices) -> CostEstimate {
    let s = inputs.settings;
    let region = inputs.region;
    let mut rates = Rates {
        unconfirmed: Vec::new(),
        missing: Vec::new(),
        currency: &prices.currency,
    };
    let teacher = prices.model(&s.teacher, region);
    let student = prices.model(&s.student, region);
    let mut items = Vec::new();

    // Teacher generation: the prompts in, the answers out.
    let answers_low = tokens.given_answer_tokens;
    let answers_high = tokens.prompts * u64::from(s.max_response_length);
    let (t_in, c_in) = rates.take(
        teacher.and_then(|m| m.on_demand_input_per1k_tokens.as_ref()),
        format!("{} on-demand input per 1,000 tokens in {region}", s.teacher),
    );
    let (t_out, c_out) = rates.take(
        teacher.and_then(|m| m.on_demand_output_per1k_tokens.as_ref()),
        format!(
            "{} on-demand output per 1,000 tokens in {region}",
            s.teacher
        ),
    );
    let cur = rates.currency.to_string();
    items.push(CostLineItem {
        item: "teacher_generation".into(),
        low_usd: per_1k(tokens.prompt_tokens, t_in) + per_1k(answers_low, t_out),
        high_usd: per_1k(tokens.prompt_tokens, t_in) + per_1k(answers_high, t_out),
        basis: format!(
            "{} prompt tokens at {cur} {t_in} + {answers_low}..{answers_high} answer tokens at {cur} {t_out} per 1,000 ({} on demand)",
            tokens.prompt_tokens, s.teacher
        ),
        confirmed: c_in && c_out,
    });

    // Student training: every prompt with its answer, once.
    let (train, c_train) = rates.take(
        student.and_then(|m| m.training_per1k_tokens.as_ref()),
        format!("{} training per 1,000 tokens in {region}", s.student),
    );
    let trained_low = tokens.prompt_tokens + answers_low;
    let trained_high = tokens.prompt_tokens + answers_high;
    items.push(CostLineItem {
        item: "student_training".into(),
        low_usd: per_1k(trained_low, train),
        high_usd: per_1k(trained_high, train),
        basis: format!(
            "{trained_low}..{trained_high} tokens at {cur} {train} per 1,000 ({} training, one pass)",
            s.student
        ),
        confirmed: c_train,
    });

    // One month of storage for the custom model (billed while it exists).
    let storage = prices.storage_per_month_figure(&s.student, region);
    let (store, c_store) = rates.take(
        Some(&storage),
        format!("{} custom model storage per month", s.student),
    );
    items.push(CostLineItem {
        item: "model_storage".into(),
        low_usd: store,
        high_usd: store,
        basis: format!("one month at {cur} {store} per model-month"),
        confirmed: c_store,
    });

    if s.serving == ServingMode::Provisioned {
        let figure = prices.model_unit_hour_figure(&s.student);
        let (unit, c_unit) = rates.take(
            figure.as_ref(),
            format!("{} Provisioned Throughput per model unit hour", s.student),
        );
        let serving = unit * f64::from(s.model_units) * inputs.pt_ttl_hours;
        items.push(CostLineItem {
            item: "serving".into(),
            low_usd: serving,
            high_usd: serving,
            basis: format!(
                "{} model unit(s) x {} hour(s) ({PT_TTL_HOURS_VAR}) at {cur} {unit} per unit-hour, no-commitment rate",
                s.model_units,
                format_budget(inputs.pt_ttl_hours)
            ),
            confirmed: c_unit,
        });
    }

    if s.serving == ServingMode::OnDemand {
        // Nothing is billed until someone calls the deployment, so the line is zero; its basis
        // carries the per-token rates so people can price their own traffic.
        let (r_in, c_in) = rates.take(
            student.and_then(|m| m.custom_model_on_demand_input_per1k_tokens.as_ref()),
            format!(
                "{} custom model on-demand input per 1,000 tokens in {region}",
                s.student
            ),
        );
        let (r_out, c_out) = rates.take(
            student.and_then(|m| m.custom_model_on_demand_output_per1k_tokens.as_ref()),
            format!(
                "{} custom model on-demand output per 1,000 tokens in {region}",
                s.student
            ),
        );
        items.push(CostLineItem {
            item: "serving".into(),
            low_usd: 0.0,
            high_usd: 0.0,
            basis: format!(
                "on-demand deployment: nothing when idle; calls billed at {cur} {r_in} per 1,000 input and {cur} {r_out} per 1,000 output tokens"
            ),
            confirmed: c_in && c_out,
        });
    }

    let low_usd = items.iter().map(|i| i.low_usd).sum();
    let high_usd = items.iter().map(|i| i.high_usd).sum();
    CostEstimate {
        currency: cur,
        low_usd,
        high_usd,
        confirmed: rates.unconfirmed.is_empty() && rates.missing.is_empty(),
        line_items: items,
        unconfirmed: rates.unconfirmed,
        missing: rates.missing,
        region: region.to_string(),
        budget_usd: None,
        over_budget: false,
    }
}

impl CostEstimate {
    /// Records the budget and whether the high figure exceeds it.
    pub fn with_budget(mut self, budget: Option<f64>) -> Self {
        self.budget_usd = budget;
        self.over_budget = budget.is_some_and(|b| self.high_usd > b);
        self
    }

    /// "USD 1.23 to USD 4.56 (teacher generation 0.10..3.00, ...); unconfirmed prices: ..."
    pub fn describe(&self) -> String {
        let cur = &self.currency;
        let items: Vec<String> = self
            .line_items
            .iter()
            .map(|i| {
                let name = i.item.replace('_', " ");
                if (i.low_usd - i.high_usd).abs() < 0.005 {
                    format!("{name} {:.2}", i.high_usd)
                } else {
                    format!("{name} {:.2}..{:.2}", i.low_usd, i.high_usd)
                }
            })
            .collect();
        let mut text = format!(
            "{cur} {:.2} to {cur} {:.2} ({})",
            self.low_usd,
            self.high_usd,
            items.join(", ")
        );
        // Short enough for a chat message; the report and the CLI list each unconfirmed figure.
        if !self.unconfirmed.is_empty() {
            text.push_str(&format!(
                "; uses {} unconfirmed price(s) from prices.json",
                self.unconfirmed.len()
            ));
        }
        if !self.missing.is_empty() {
            text.push_str(&format!(
                "; no price in prices.json for {} (counted as 0, so the figures are short)",
                self.missing.join(", ")
            ));
        }
        text
    }

    /// The rejection when over budget: `over_budget: the high cost estimate USD 5.00 exceeds the
    /// budget USD 1.00 (from ...)`.
    pub fn over_budget_error(&self, budget_origin: &str) -> Option<StepError> {
        let budget = self.budget_usd.filter(|_| self.over_budget)?;
        let cur = &self.currency;
        Some(StepError::new(
            ErrorType::GuardrailViolation,
            format!(
                "{OVER_BUDGET}: the high cost estimate {cur} {:.2} exceeds the budget {cur} {} set by {budget_origin}; \
                 estimate {}",
                self.high_usd,
                format_budget(budget),
                self.describe()
            ),
        ))
    }
}

/// A budget as given, without float noise (0.01 stays "0.01").
pub fn format_budget(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A budget value: a finite, non-negative number of dollars.
pub fn parse_budget(v: &str) -> Option<f64> {
    v.trim()
        .trim_start_matches('$')
        .parse::<f64>()
        .ok()
        .filter(|b| b.is_finite() && *b >= 0.0)
}

/// The budget for one dataset: the stack's (`MAX_RUN_COST_USD`), lowered by its metadata. A
/// metadata value above the stack's is refused with the reason, like the other guardrail overrides:
/// a dataset may only ask to spend less. Returns the budget and where it came from.
pub fn resolve_budget(
    stack: Option<f64>,
    metadata: Option<&str>,
) -> Result<Option<(f64, String)>, StepError> {
    let from_stack = || format!("the stack's {MAX_RUN_COST_VAR}");
    let Some(raw) = metadata.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(stack.map(|b| (b, from_stack())));
    };
    let origin = format!("S3 metadata x-amz-meta-{MAX_RUN_COST_METADATA_KEY}");
    let asked = parse_budget(raw).ok_or_else(|| {
        StepError::config(format!(
            "the run's budget must be a number of US dollars (0 or more), got '{raw}'; the value came from {origin}"
        ))
    })?;
    match stack {
        Some(max) if asked > max => Err(StepError::new(
            ErrorType::GuardrailViolation,
            format!(
                "a run's budget of USD {} exceeds the stack's {MAX_RUN_COST_VAR} of USD {}: metadata may only lower it; \
                 the value came from {origin}",
                format_budget(asked),
                format_budget(max)
            ),
        )),
        _ => Ok(Some((asked, origin))),
    }
}

/// A TTL value: a finite number of hours above 0 (fractions allowed: `0.5` is half an hour).
pub fn parse_ttl_hours(v: &str) -> Option<f64> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|h| h.is_finite() && *h > 0.0 && *h <= MAX_PT_TTL_HOURS)
}

/// The longest TTL (a leap year of hours, the SAM parameter's MaxValue): an expiry far beyond it
/// would overflow the date arithmetic after the throughput was bought.
pub const MAX_PT_TTL_HOURS: f64 = 8784.0;

/// `hours` (fractions allowed) as a duration, to the millisecond.
pub fn hours_duration(hours: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((hours * 3_600_000.0).round() as i64)
}

/// The Provisioned Throughput TTL for one dataset: the stack's (`PT_TTL_HOURS`), shortened by its
/// metadata. Like the budget ([`resolve_budget`]), metadata may only lower it: a dataset may ask to
/// keep paid throughput for less time, never for more. Returns the hours and where they came from.
pub fn resolve_pt_ttl(stack: f64, metadata: Option<&str>) -> Result<(f64, String), StepError> {
    let Some(raw) = metadata.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok((stack, format!("the stack's {PT_TTL_HOURS_VAR}")));
    };
    let origin = format!("S3 metadata x-amz-meta-{PT_TTL_METADATA_KEY}");
    let asked = parse_ttl_hours(raw).ok_or_else(|| {
        StepError::config(format!(
            "the Provisioned Throughput TTL must be a number of hours above 0 and at most 8784 (e.g. 0.5 or 12), got '{raw}'; \
             the value came from {origin}"
        ))
    })?;
    if asked > stack {
        return Err(StepError::new(
            ErrorType::GuardrailViolation,
            format!(
            "a Provisioned Throughput TTL of {} hour(s) exceeds the stack's {PT_TTL_HOURS_VAR} of {} hour(s): \
             metadata may only shorten it; the value came from {origin}",
            format_budget(asked),
            format_budget(stack)
            ),
        ));
    }
    Ok((asked, origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::ModelPrices;
    use crate::domain::settings::Commitment;
    use std::collections::BTreeMap;

    fn fig(usd: f64, confirmed: bool) -> Option<PriceFigure> {
        Some(PriceFigure {
            usd,
            as_of: "2026-11-29".into(),
            source: "test".into(),
            confirmed,
        })
    }

    /// Round figures so the arithmetic in the comments is easy to check.
    fn prices(confirmed: bool) -> Prices {
        let mut p = Prices::builtin();
        p.confirmed = confirmed;
        p.custom_model_storage_per_month = 2.0;
        p.provisioned_throughput_per_model_unit_hour =
            BTreeMap::from([("student".to_string(), 20.0)]);
        let teacher = ModelPrices {
            on_demand_input_per1k_tokens: fig(0.001, confirmed),
            on_demand_output_per1k_tokens: fig(0.004, confirmed),
            ..Default::default()
        };
        let student = ModelPrices {
            training_per1k_tokens: fig(0.002, confirmed),
            ..Default::default()
        };
        p.models = BTreeMap::from([
            (
                "teacher".to_string(),
                BTreeMap::from([("r".to_string(), teacher)]),
            ),
            (
                "student".to_string(),
                BTreeMap::from([("r".to_string(), student)]),
            ),
        ]);
        p
    }

    fn settings(serving: ServingMode) -> RunSettings {
        RunSettings {
            teacher: "teacher".into(),
            student: "student".into(),
            max_response_length: 1000,
            serving,
            model_units: 2,
            commitment: Commitment::None,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    const TOKENS: TokenCounts = TokenCounts {
        prompts: 100,
        prompt_tokens: 50_000,
        given_answer_tokens: 20_000,
    };

    #[test]
    fn the_range_spans_given_answers_to_full_length_answers() {
        let s = settings(ServingMode::None);
        let inputs = CostInputs {
            settings: &s,
            region: "r",
            pt_ttl_hours: 24.0,
        };
        let e = estimate(&TOKENS, &inputs, &prices(true));
        let item = |name: &str| e.line_items.iter().find(|i| i.item == name).unwrap();
        // Teacher, low: 50,000 prompt tokens x 0.001/1k = 0.05; 20,000 given answer tokens x
        // 0.004/1k = 0.08; total 0.13.
        // Teacher, high: 0.05 + 100 prompts x 1,000 tokens = 100,000 x 0.004/1k = 0.40; total 0.45.
        assert!(close(item("teacher_generation").low_usd, 0.13));
        assert!(close(item("teacher_generation").high_usd, 0.45));
        // Training, low: (50,000 + 20,000) x 0.002/1k = 0.14; high: (50,000 + 100,000) x 0.002/1k = 0.30.
        assert!(close(item("student_training").low_usd, 0.14));
        assert!(close(item("student_training").high_usd, 0.30));
        // Storage: one month at 2.00 (the table-wide figure: the student has none of its own).
        assert!(close(item("model_storage").high_usd, 2.0));
        // No serving line when serving is none.
        assert_eq!(e.line_items.len(), 3);
        // Totals: low 0.13 + 0.14 + 2.00 = 2.27; high 0.45 + 0.30 + 2.00 = 2.75.
        assert!(close(e.low_usd, 2.27), "{}", e.low_usd);
        assert!(close(e.high_usd, 2.75), "{}", e.high_usd);
        assert!(e.confirmed && e.unconfirmed.is_empty() && e.missing.is_empty());
        assert_eq!(
            e.describe(),
            "USD 2.27 to USD 2.75 (teacher generation 0.13..0.45, student training 0.14..0.30, model storage 2.00)"
        );
    }

    #[test]
    fn on_demand_serving_adds_a_zero_line_with_the_per_token_rates() {
        let mut p = prices(true);
        let rates = ModelPrices {
            custom_model_on_demand_input_per1k_tokens: fig(0.0001, true),
            custom_model_on_demand_output_per1k_tokens: fig(0.0004, false),
            ..p.models["student"]["r"].clone()
        };
        p.models
            .get_mut("student")
            .unwrap()
            .insert("r".into(), rates);
        let estimate_for = |serving| {
            let s = settings(serving);
            let inputs = CostInputs {
                settings: &s,
                region: "r",
                pt_ttl_hours: 24.0,
            };
            estimate(&TOKENS, &inputs, &p)
        };
        let (none, e) = (
            estimate_for(ServingMode::None),
            estimate_for(ServingMode::OnDemand),
        );
        let serving = e.line_items.iter().find(|i| i.item == "serving").unwrap();
        assert_eq!((serving.low_usd, serving.high_usd), (0.0, 0.0));
        assert!(
            serving
                .basis
                .contains("USD 0.0001 per 1,000 input and USD 0.0004 per 1,000 output"),
            "{}",
            serving.basis
        );
        // Idle costs nothing: the totals are those of serving none (2.27 to 2.75, above).
        assert!(close(e.low_usd, none.low_usd) && close(e.high_usd, none.high_usd));
        // The unconfirmed output rate is named.
        assert!(!serving.confirmed && !e.confirmed);
        assert_eq!(e.unconfirmed.len(), 1, "{:?}", e.unconfirmed);
    }

    #[test]
    fn provisioned_serving_counts_the_ttl_hours() {
        let s = settings(ServingMode::Provisioned);
        let inputs = CostInputs {
            settings: &s,
            region: "r",
            pt_ttl_hours: 24.0,
        };
        let e = estimate(&TOKENS, &inputs, &prices(true));
        // Serving: 2 model units x 24 hours x 20.00 per unit-hour = 960.00, in both bounds.
        let serving = e.line_items.iter().find(|i| i.item == "serving").unwrap();
        assert!(close(serving.low_usd, 960.0) && close(serving.high_usd, 960.0));
        // Totals: 2.27 + 960 = 962.27 and 2.75 + 960 = 962.75.
        assert!(close(e.low_usd, 962.27) && close(e.high_usd, 962.75));
        let short = CostInputs {
            pt_ttl_hours: 1.0,
            ..inputs
        };
        // 2 units x 1 hour x 20.00 = 40.00; high 2.75 + 40 = 42.75.
        assert!(close(
            estimate(&TOKENS, &short, &prices(true)).high_usd,
            42.75
        ));
    }

    #[test]
    fn unconfirmed_and_missing_prices_are_named() {
        let s = settings(ServingMode::None);
        let inputs = CostInputs {
            settings: &s,
            region: "r",
            pt_ttl_hours: 24.0,
        };
        let e = estimate(&TOKENS, &inputs, &prices(false));
        assert!(!e.confirmed);
        assert!(e
            .unconfirmed
            .iter()
            .any(|u| u.contains("teacher on-demand input")));
        assert!(e.describe().contains("uses 4 unconfirmed price(s)"));
        // Another Region: no token prices; they count as zero and are named.
        let elsewhere = CostInputs {
            region: "elsewhere",
            ..inputs
        };
        let e = estimate(&TOKENS, &elsewhere, &prices(true));
        assert_eq!(e.missing.len(), 3, "{:?}", e.missing);
        assert!(close(e.high_usd, 2.0));
        assert!(e.describe().contains("counted as 0"));
    }

    #[test]
    fn the_budget_rejects_a_high_estimate_above_it_naming_both_figures() {
        let s = settings(ServingMode::None);
        let inputs = CostInputs {
            settings: &s,
            region: "r",
            pt_ttl_hours: 24.0,
        };
        let e = estimate(&TOKENS, &inputs, &prices(false)).with_budget(Some(0.01));
        assert!(e.over_budget);
        let err = e.over_budget_error("S3 metadata x").unwrap();
        assert_eq!(err.error_type, ErrorType::GuardrailViolation);
        assert!(
            err.message.starts_with(
                "over_budget: the high cost estimate USD 2.75 exceeds the budget USD 0.01 set by S3 metadata x; estimate USD 2.27 to USD 2.75 (teacher generation 0.13..0.45, student training 0.14..0.30, model storage 2.00); uses 4 unconfirmed price(s) from prices.json"
            ),
            "{}",
            err.message
        );
        // Exactly at the budget is within it.
        let at = estimate(&TOKENS, &inputs, &prices(true)).with_budget(Some(2.75));
        assert!(!at.over_budget && at.over_budget_error("x").is_none());
        let none = estimate(&TOKENS, &inputs, &prices(true)).with_budget(None);
        assert!(!none.over_budget);
    }

    #[test]
    fn metadata_may_only_lower_the_budget() {
        assert_eq!(resolve_budget(None, None).unwrap(), None);
        let (b, origin) = resolve_budget(Some(100.0), None).unwrap().unwrap();
        assert!(close(b, 100.0) && origin == "the stack's MAX_RUN_COST_USD");
        let (b, origin) = resolve_budget(Some(100.0), Some(" 0.01 "))
            .unwrap()
            .unwrap();
        assert!(close(b, 0.01));
        assert_eq!(origin, "S3 metadata x-amz-meta-distillery-max-run-cost-usd");
        // No stack budget: the dataset may set one.
        assert!(resolve_budget(None, Some("5")).unwrap().is_some());
        let e = resolve_budget(Some(100.0), Some("250")).unwrap_err();
        assert_eq!(e.error_type, ErrorType::GuardrailViolation);
        assert!(
            e.message.starts_with(
                "a run's budget of USD 250 exceeds the stack's MAX_RUN_COST_USD of USD 100: metadata may only lower it"
            ),
            "{}",
            e.message
        );
        let e = resolve_budget(Some(100.0), Some("lots")).unwrap_err();
        assert_eq!(e.error_type, ErrorType::ConfigInvalid);
        assert!(e.message.contains("got 'lots'"));
        assert!(parse_budget("-1").is_none() && parse_budget("NaN").is_none());
        assert_eq!(format_budget(0.01), "0.01");
        assert_eq!(format_budget(100.0), "100");
    }

    #[test]
    fn the_builtin_table_prices_the_default_pair() {
        let s = RunSettings {
            teacher: "amazon.nova-pro-v1:0".into(),
            student: "amazon.nova-lite-v1:0:300k".into(),
            ..settings(ServingMode::None)
        };
        let inputs = CostInputs {
            settings: &s,
            region: "us-east-1",
            pt_ttl_hours: 24.0,
        };
        let e = estimate(&TOKENS, &inputs, &Prices::builtin());
        assert!(e.missing.is_empty(), "{:?}", e.missing);
        // The built-in figures are not confirmed, and the text says so.
        assert!(!e.confirmed && e.describe().contains("unconfirmed"));
    }

    #[test]
    fn the_ttl_metadata_may_only_shorten_the_stacks() {
        let (h, origin) = resolve_pt_ttl(24.0, None).unwrap();
        assert!(close(h, 24.0) && origin == "the stack's PT_TTL_HOURS");
        let (h, origin) = resolve_pt_ttl(24.0, Some(" 0.5 ")).unwrap();
        assert!(close(h, 0.5));
        assert_eq!(origin, "S3 metadata x-amz-meta-distillery-pt-ttl-hours");
        assert!(close(resolve_pt_ttl(24.0, Some("24")).unwrap().0, 24.0));
        let e = resolve_pt_ttl(24.0, Some("48")).unwrap_err();
        assert_eq!(e.error_type, ErrorType::GuardrailViolation);
        assert!(
            e.message.starts_with(
                "a Provisioned Throughput TTL of 48 hour(s) exceeds the stack's PT_TTL_HOURS of 24 hour(s): metadata may only shorten it"
            ) && e.message.ends_with("x-amz-meta-distillery-pt-ttl-hours"),
            "{}",
            e.message
        );
        for bad in ["0", "-1", "soon", "inf"] {
            let e = resolve_pt_ttl(24.0, Some(bad)).unwrap_err();
            assert_eq!(e.error_type, ErrorType::ConfigInvalid, "{bad}");
            assert!(e.message.contains(&format!("got '{bad}'")), "{}", e.message);
        }
    }
}
