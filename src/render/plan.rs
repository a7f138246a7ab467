//! Plans for people (terraform-like text), for tools (versioned JSON), for pull-request
//! comments (markdown) and for GitHub Actions (annotations on the spec lines).
//!
//! Symbols: `+` create, `~` update in place, `-/+` replace, `!` blocked. The text reads
//! the same without colour.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use super::{escape_data, escape_property};
use crate::plan::{Action, Plan, ResourceChange, Summary, WorkspacePlan};

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::NoOp => " ",
        Action::Blocked => "!",
    }
}

fn style(action: Action) -> Style {
    let color = match action {
        Action::Create => AnsiColor::Green,
        Action::Update => AnsiColor::Yellow,
        Action::Replace => AnsiColor::Magenta,
        Action::Blocked => AnsiColor::Red,
        Action::NoOp => return Style::new(),
    };
    Style::new().fg_color(Some(color.into()))
}

/// A value as the plan shows it: strings quoted, everything else as compact JSON.
pub fn value(value: &Value) -> String {
    match value {
        Value::String(text) if text.contains('\n') => {
            let first = text.lines().next().unwrap_or_default();
            format!("{:?} (+{} more lines)", first, text.lines().count() - 1)
        }
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

/// The resource's headline: `+ cluster gpu-cluster (update in place)`.
fn headline(change: &ResourceChange) -> String {
    let what = match change.action {
        Action::Create => change.detail.clone(),
        Action::Update => Some("update in place".into()),
        Action::Replace => Some(format!(
            "must be replaced: {}",
            change
                .reason
                .as_deref()
                .unwrap_or("an attribute cannot change")
        )),
        Action::Blocked => None,
        Action::NoOp => None,
    };
    let mut line = format!(
        "{} {} {}",
        symbol(change.action),
        change.kind.label(),
        change.name
    );
    if let Some(what) = what {
        let _ = write!(line, " ({what})");
    }
    line
}

/// Attribute lines under a resource.
fn attribute_lines(change: &ResourceChange) -> Vec<String> {
    let mut lines = Vec::new();
    let after = change.after.as_ref();
    let before = change.before.as_ref();
    match change.action {
        Action::Create => {
            for (name, v) in after.into_iter().flatten() {
                lines.push(format!("+ {name}: {}", value(v)));
            }
        }
        Action::Update | Action::Replace => {
            for name in &change.changed {
                let old = before.and_then(|b| b.get(name));
                let new = after.and_then(|a| a.get(name));
                let forced = if change.forces_replacement.contains(name) {
                    " (forces replacement)"
                } else {
                    ""
                };
                let line = match (old, new) {
                    (Some(old), Some(new)) => {
                        format!("~ {name}: {} -> {}{forced}", value(old), value(new))
                    }
                    (None, Some(new)) => format!("+ {name}: {}{forced}", value(new)),
                    (Some(old), None) => format!("- {name}: {}{forced}", value(old)),
                    (None, None) => continue,
                };
                lines.push(line);
            }
        }
        Action::Blocked => {
            if let Some(reason) = &change.reason {
                lines.push(format!("reason: {reason}"));
            }
        }
        Action::NoOp => {}
    }
    if change.action != Action::Blocked
        && change.action != Action::Replace
        && let Some(reason) = &change.reason
    {
        lines.push(format!("note: {reason}"));
    }
    lines
}

pub fn summary_line(summary: &Summary) -> String {
    let mut line = format!(
        "Plan: {} to create, {} to update, {} to replace. {} unchanged.",
        summary.create, summary.update, summary.replace, summary.unchanged
    );
    if summary.blocked > 0 {
        let _ = write!(
            line,
            " {} blocked: the plan cannot be applied as is.",
            summary.blocked
        );
    }
    line
}

/// The resources of a workspace that change (or are blocked).
fn changes(workspace: &WorkspacePlan) -> Vec<&ResourceChange> {
    workspace
        .resources
        .iter()
        .filter(|r| r.action != Action::NoOp)
        .collect()
}

/// The human form.
pub fn human(plan: &Plan, styled: bool) -> String {
    let mut out = String::new();
    // What an unchanged resource has to say (e.g. a password that could not be compared).
    let notes: Vec<String> = plan
        .resources()
        .filter(|r| r.action == Action::NoOp)
        .filter_map(|r| {
            Some(format!(
                "note: {} {}: {}",
                r.kind.label(),
                r.name,
                r.reason.as_ref()?
            ))
        })
        .collect();
    if !plan.has_changes() && !plan.is_blocked() {
        for note in &notes {
            let _ = writeln!(out, "{note}");
        }
        let total = plan.summary.unchanged;
        let _ = writeln!(
            out,
            "No changes. {} up to date.",
            super::count(total, "resource is", "resources are")
        );
        return out;
    }
    for workspace in &plan.workspaces {
        let changed = changes(workspace);
        if changed.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "workspace {} (resource group {})",
            workspace.name, workspace.resource_group
        );
        for change in changed {
            let style = if styled {
                style(change.action)
            } else {
                Style::new()
            };
            let _ = writeln!(out, "  {style}{}{style:#}", headline(change));
            for line in attribute_lines(change) {
                let _ = writeln!(out, "      {style}{line}{style:#}");
            }
        }
        out.push('\n');
    }
    for note in &notes {
        let _ = writeln!(out, "{note}");
    }
    let _ = writeln!(out, "{}", summary_line(&plan.summary));
    out
}

/// `--format json`: the plan itself, versioned.
pub fn json(plan: &Plan) -> String {
    let mut text = serde_json::to_string_pretty(plan).expect("a plan serializes");
    text.push('\n');
    text
}

/// `--format markdown`: for a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let s = &plan.summary;
    let _ = writeln!(out, "### amlspec plan\n");
    if !plan.has_changes() && !plan.is_blocked() {
        let _ = writeln!(
            out,
            "**No changes.** {} up to date.",
            super::count(s.unchanged, "resource is", "resources are")
        );
        return out;
    }
    let _ = writeln!(
        out,
        "**{} to create, {} to update, {} to replace**, {} unchanged{}.\n",
        s.create,
        s.update,
        s.replace,
        s.unchanged,
        if s.blocked > 0 {
            format!(", **{} blocked**", s.blocked)
        } else {
            String::new()
        }
    );
    for workspace in &plan.workspaces {
        let changed = changes(workspace);
        if changed.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<details><summary>workspace <code>{}</code> (resource group <code>{}</code>): {}</summary>\n",
            workspace.name,
            workspace.resource_group,
            super::count(changed.len(), "change", "changes")
        );
        let _ = writeln!(out, "```diff");
        for change in changed {
            // In a diff block, `+` is green, `-` red and `!` highlighted.
            let marker = match change.action {
                Action::Create => "+",
                Action::Update => "!",
                Action::Replace => "-",
                Action::Blocked => "!",
                Action::NoOp => " ",
            };
            let _ = writeln!(out, "{marker} {}", headline(change));
            for line in attribute_lines(change) {
                let _ = writeln!(out, "{marker}     {line}");
            }
        }
        let _ = writeln!(out, "```\n\n</details>\n");
    }
    out
}

/// `--format github`: one workflow command per changed resource, on its spec line.
pub fn github_annotations(plan: &Plan) -> String {
    let mut out = String::new();
    for change in plan.resources().filter(|r| r.action != Action::NoOp) {
        let level = match change.action {
            Action::Blocked => "error",
            Action::Replace => "warning",
            _ => "notice",
        };
        let mut message = headline(change);
        for line in attribute_lines(change) {
            message.push('\n');
            message.push_str(&line);
        }
        let location = match &change.origin {
            Some(origin) => format!(
                "file={},line={},col={},",
                escape_property(&origin.file),
                origin.line,
                origin.column
            ),
            None => String::new(),
        };
        let title = format!("amlspec plan: {} {}", change.kind.label(), change.name);
        let _ = writeln!(
            out,
            "::{level} {location}title={}::{}",
            escape_property(&title),
            escape_data(&message)
        );
    }
    out
}
