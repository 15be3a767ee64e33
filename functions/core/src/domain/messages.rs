//! Rendering of milestone messages (SNS text and Slack Block Kit). Pure. (Owned by the notifier work in issue 3.)
