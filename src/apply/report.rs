//! What an apply did, step by step, for the closing report (human or `--format json`).

use serde::Serialize;

use super::drive::Ran;
use super::follow::JobState;
use crate::plan::step::Step;
use crate::plan::{Action, Address, Kind};

/// Version of the report's JSON form.
pub const REPORT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub outcome: ApplyOutcome,
    /// Every step, in the plan's order.
    pub steps: Vec<StepReport>,
    /// Submitted jobs as `--wait` last saw them (empty without `--wait`).
    pub jobs: Vec<JobReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    /// Every step done (and, with `--wait`, every job completed).
    Succeeded,
    /// A step failed (or a followed job did not complete).
    Failed,
    /// Stopped by a signal before the end.
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub address: Address,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub action: Action,
    pub result: StepResult,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The failed step it needed (for a skipped step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<Address>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    Done,
    Failed,
    /// Not started: a step it needs failed.
    Skipped,
    /// Not started: the apply was stopped.
    NotStarted,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub id: String,
    pub status: Option<String>,
    pub studio_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds from its start to its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

impl Report {
    pub fn new(steps: &[Step], ran: &Ran<Address, String>, jobs: &[JobState]) -> Report {
        let steps: Vec<StepReport> = steps
            .iter()
            .map(|step| {
                let address = &step.address;
                let (result, error, because) = if ran.done.contains(address) {
                    (StepResult::Done, None, None)
                } else if let Some((_, error)) = ran.failed.iter().find(|(a, _)| a == address) {
                    (StepResult::Failed, Some(error.clone()), None)
                } else if let Some((_, because)) = ran.skipped.iter().find(|(a, _)| a == address) {
                    (StepResult::Skipped, None, Some(because.clone()))
                } else {
                    (StepResult::NotStarted, None, None)
                };
                StepReport {
                    address: address.clone(),
                    kind: step.kind.clone(),
                    action: step.action,
                    result,
                    error,
                    because,
                }
            })
            .collect();
        let jobs: Vec<JobReport> = jobs
            .iter()
            .map(|job| JobReport {
                id: job.id.to_string(),
                status: job.status.clone(),
                studio_url: job.studio_url.clone(),
                error: job.error.clone(),
                duration_seconds: job.duration.map(|d| d.as_secs_f64()),
            })
            .collect();
        let outcome = if ran.stopped {
            ApplyOutcome::Interrupted
        } else if steps.iter().all(|s| s.result == StepResult::Done)
            && jobs
                .iter()
                .all(|j| j.status.as_deref() == Some("Completed"))
        {
            ApplyOutcome::Succeeded
        } else {
            ApplyOutcome::Failed
        };
        Report {
            format_version: REPORT_FORMAT_VERSION,
            outcome,
            steps,
            jobs,
        }
    }

    /// How many steps of `action` are done.
    pub fn done(&self, action: Action) -> usize {
        self.steps
            .iter()
            .filter(|s| s.action == action && s.result == StepResult::Done && s.kind != Kind::Code)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ResourceId;
    use crate::plan::step::{Body, Work};

    fn step(address: &str) -> Step {
        Step {
            address: Address::resource_group(address),
            kind: Kind::ResourceGroup,
            action: Action::Create,
            depends_on: Vec::new(),
            work: Work::Put {
                id: ResourceId::resource_group("s", address),
                body: Body(serde_json::json!({})),
            },
        }
    }

    fn ran(done: &[&str], failed: &[&str], stopped: bool) -> Ran<Address, String> {
        Ran {
            done: done.iter().map(|a| Address::resource_group(a)).collect(),
            failed: failed
                .iter()
                .map(|a| (Address::resource_group(a), "boom".to_string()))
                .collect(),
            skipped: Vec::new(),
            not_started: Vec::new(),
            stopped,
        }
    }

    #[test]
    fn the_outcome_needs_every_step_done_and_every_followed_job_completed() {
        let steps = [step("a"), step("b")];
        let all = Report::new(&steps, &ran(&["a", "b"], &[], false), &[]);
        assert_eq!(all.outcome, ApplyOutcome::Succeeded);
        assert_eq!(all.done(Action::Create), 2);
        assert_eq!(all.done(Action::Update), 0);
        // An upload is not a resource made; a step that failed is not done.
        let mut upload = step("code");
        upload.kind = Kind::Code;
        let mixed = Report::new(
            &[step("a"), upload, step("c")],
            &ran(&["a", "code"], &["c"], false),
            &[],
        );
        assert_eq!(mixed.done(Action::Create), 1);

        let one_failed = Report::new(&steps, &ran(&["a"], &["b"], false), &[]);
        assert_eq!(one_failed.outcome, ApplyOutcome::Failed);
        assert_eq!(one_failed.steps[1].result, StepResult::Failed);
        assert_eq!(one_failed.steps[1].error.as_deref(), Some("boom"));

        let stopped = Report::new(&steps, &ran(&["a"], &[], true), &[]);
        assert_eq!(stopped.outcome, ApplyOutcome::Interrupted);
        assert_eq!(stopped.steps[1].result, StepResult::NotStarted);

        let job = |status: &str| JobState {
            id: ResourceId::resource_group("s", "j"),
            status: Some(status.to_string()),
            studio_url: None,
            error: None,
            duration: None,
        };
        let failed_job = Report::new(&steps, &ran(&["a", "b"], &[], false), &[job("Failed")]);
        assert_eq!(failed_job.outcome, ApplyOutcome::Failed);
        let completed = Report::new(&steps, &ran(&["a", "b"], &[], false), &[job("Completed")]);
        assert_eq!(completed.outcome, ApplyOutcome::Succeeded);
    }
}
