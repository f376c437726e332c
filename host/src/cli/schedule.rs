use super::print_json;
use crate::Host;
use crate::operations::integrations::ScheduleInput;
use crate::operations::updates::{self, UpdatesQuery};
use crate::schedule::Schedule;
use crate::status::UpdateStatus;
use crate::sync::to_datetime;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

#[derive(Debug, clap::Subcommand)]
pub enum ScheduleCommand {
    /// Every integration with its schedule, status and next due time.
    List {
        #[arg(long)]
        json: bool,
    },
    /// The next run instants of a cron expression, to check it before saving.
    Preview {
        /// 5-field cron expression, e.g. "0 6,18 * * *".
        expression: String,
        /// IANA time zone, e.g. Europe/London.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Start from this time (RFC 3339) instead of now.
        #[arg(long)]
        from: Option<String>,
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
}

/// The schedule flags shared by `integrations add` and `integrations schedule`.
#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// Run every interval: 5m, 15m, 30m, 1h, 6h, daily, weekly, or e.g. 90m.
    #[arg(long, conflicts_with_all = ["cron", "manual"])]
    every: Option<String>,
    /// Cron expression (5 fields); repeat the flag for several.
    #[arg(long, conflicts_with = "manual")]
    cron: Vec<String>,
    /// IANA time zone of the --cron expressions (default UTC).
    #[arg(long, requires = "cron")]
    tz: Option<String>,
    /// Run only when triggered.
    #[arg(long)]
    manual: bool,
}

impl ScheduleArgs {
    /// The schedule the flags describe; `None` when none was given. It is
    /// checked where it is used, like one sent to the API.
    pub fn input(&self) -> Option<ScheduleInput> {
        if let Some(every) = &self.every {
            return Some(ScheduleInput::Interval { seconds: None, every: Some(every.clone()) });
        }
        if !self.cron.is_empty() {
            return Some(ScheduleInput::Cron { expressions: self.cron.clone(), timezone: self.tz.clone() });
        }
        self.manual.then_some(ScheduleInput::Manual)
    }
}

pub async fn run(host: &Host, command: ScheduleCommand) -> Result<()> {
    match command {
        ScheduleCommand::List { json } => list(host, json).await,
        ScheduleCommand::Preview { expression, tz, from, count } => {
            let compiled = Schedule::cron(vec![expression], &tz)?.compile()?;
            let zone = compiled.timezone().expect("a cron schedule has a time zone");
            let from: DateTime<Utc> = match from {
                Some(text) => DateTime::parse_from_rfc3339(&text)
                    .with_context(|| format!("--from {text:?} is not an RFC 3339 time"))?
                    .with_timezone(&Utc),
                None => Utc::now(),
            };
            for instant in compiled.preview(from, count) {
                println!(
                    "{}  {}",
                    instant.format("%Y-%m-%dT%H:%M:%SZ"),
                    instant.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z")
                );
            }
            Ok(())
        }
    }
}

async fn list(host: &Host, json: bool) -> Result<()> {
    let rows = updates::all_rows(host, &UpdatesQuery::default()).await?;
    if json {
        return print_json(&rows);
    }
    println!("{:<5} {:<28} {:<36} {:<20} NEXT DUE (UTC)", "ID", "NAME", "SCHEDULE", "STATUS");
    for row in rows {
        // A retry's time is when the integration next runs.
        let next_at = match row.status {
            UpdateStatus::Retrying { at, .. } => Some(at),
            _ => row.next_due_at,
        };
        let next = next_at.map_or("-".into(), |ms| to_datetime(ms).format("%Y-%m-%d %H:%M:%S").to_string());
        let default_marker = if row.schedule_is_default { " (default)" } else { "" };
        println!(
            "{:<5} {:<28} {:<36} {:<20} {next}",
            row.id,
            row.name,
            format!("{}{default_marker}", row.schedule_summary),
            row.status_label,
        );
        if let Some(error) = &row.last_error {
            println!("{:<5} last error: {error}", "");
        }
    }
    Ok(())
}
