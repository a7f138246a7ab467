//! Plans for people (terraform-like text), for tools (versioned JSON), for pull-request
//! comments (markdown) and for GitHub Actions (annotations on the spec lines).
//!
//! Symbols: `+` create, `~` update in place, `-/+` replace, `!` blocked. The text reads
//! the same without colour.
//!
//! Spec-derived text is escaped in every form: control characters (ESC, CR, BS, NUL,
//! DEL, ...) and bidirectional and invisible format characters are shown as `\u{..}`
//! escapes (`diagnostic::escape`, the one escaping of spec text for every output), markdown keeps it inside its code block and out of HTML,
//! and GitHub workflow commands get GitHub's own escaping on top. Secrets are masked
//! before any of it ([`redacted`]).

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use super::redact::Redactor;
use super::{escape_data, escape_property};
use crate::diagnostic::escape as escape_text;
use crate::plan::preflight::Outcome;
use crate::plan::{
    Action, CodeDetail, Detail, Plan, ResourceChange, SpecLocation, Summary, Upload, WorkspacePlan,
};

/// `text` for HTML (markdown's `<summary>`), escaped as text there.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in escape_text(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The plan with every secret masked in every piece of text it holds, before it is
/// rendered or saved.
pub fn redacted(plan: &Plan, redactor: &Redactor) -> Plan {
    let text = |s: &String| redactor.redact(s).into_owned();
    let texts = |v: &Vec<String>| v.iter().map(text).collect::<Vec<_>>();
    let attributes = |a: &Option<crate::plan::Attributes>| {
        a.as_ref().map(|a| {
            a.iter()
                .map(|(k, v)| {
                    let mut v = v.clone();
                    redactor.redact_json(&mut v);
                    (text(k), v)
                })
                .collect()
        })
    };
    let Plan {
        format_version,
        manifest_digest,
        specs,
        targets,
        unmanaged,
        workspaces,
        summary,
    } = plan;
    Plan {
        format_version: *format_version,
        manifest_digest: text(manifest_digest),
        specs: texts(specs),
        targets: texts(targets),
        unmanaged: unmanaged
            .iter()
            .map(|u| crate::plan::Unmanaged {
                workspace: u.workspace.map_text(text),
                kind: u.kind.clone(),
                name: text(&u.name),
                id: text(&u.id),
            })
            .collect(),
        summary: *summary,
        workspaces: workspaces
            .iter()
            .map(|workspace| {
                let WorkspacePlan {
                    name,
                    resource_group,
                    subscription_id,
                    resources,
                } = workspace;
                WorkspacePlan {
                    name: text(name),
                    resource_group: text(resource_group),
                    subscription_id: text(subscription_id),
                    resources: resources
                        .iter()
                        .map(|change| {
                            let ResourceChange {
                                address,
                                kind,
                                name,
                                id,
                                action,
                                actions,
                                before,
                                after,
                                changed,
                                forces_replacement,
                                reason,
                                detail,
                                origin,
                                fingerprint,
                                depends_on,
                                facts,
                                checks,
                            } = change;
                            ResourceChange {
                                address: address.map_text(text),
                                kind: kind.clone(),
                                name: text(name),
                                id: text(id),
                                action: *action,
                                actions: actions.clone(),
                                before: attributes(before),
                                after: attributes(after),
                                changed: texts(changed),
                                forces_replacement: texts(forces_replacement),
                                reason: reason.as_ref().map(text),
                                detail: detail.as_ref().map(|d| redacted_detail(d, &text)),
                                origin: origin.as_ref().map(|o| SpecLocation {
                                    file: text(&o.file),
                                    line: o.line,
                                    column: o.column,
                                }),
                                fingerprint: fingerprint.as_ref().map(text),
                                depends_on: depends_on.iter().map(|a| a.map_text(text)).collect(),
                                facts: facts.as_ref().and_then(|facts| {
                                    let mut value = serde_json::to_value(facts).ok()?;
                                    redactor.redact_json(&mut value);
                                    serde_json::from_value(value).ok()
                                }),
                                checks: checks
                                    .iter()
                                    .map(|check| crate::plan::preflight::Check {
                                        message: text(&check.message),
                                        ..check.clone()
                                    })
                                    .collect(),
                            }
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

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

/// A line of a plan: its sign (`+`, `~`, `-/+`, `-`, `!`), if it has one, the marker
/// it takes in a markdown `diff` block, and its text, escaped.
struct Line {
    sign: Option<&'static str>,
    marker: char,
    text: String,
}

impl Line {
    fn new(sign: Option<&'static str>, text: &str) -> Line {
        // In a diff block, `+` is green, `-` red, `!` highlighted and a blank is context.
        let marker = match sign {
            Some("+") => '+',
            Some("-" | "-/+") => '-',
            Some("~" | "!") => '!',
            _ => ' ',
        };
        Line {
            sign,
            marker,
            text: escape_text(text).into_owned(),
        }
    }

    fn marked(mut self, marker: char) -> Line {
        self.marker = marker;
        self
    }

    /// As the human plan shows it: `~ max_nodes: 2 -> 4`.
    fn human(&self) -> String {
        match self.sign {
            Some(sign) => format!("{sign} {}", self.text),
            None => self.text.clone(),
        }
    }

    /// As a line of a markdown `diff` block: the marker, `indent` spaces, the text. The
    /// marker stands for the sign, except `-/+`, which says more than `-` and is kept.
    fn diff(&self, indent: usize) -> String {
        match self.sign {
            Some(sign @ "-/+") if indent <= 1 => format!("{sign} {}", self.text),
            _ => format!("{}{}{}", self.marker, " ".repeat(indent), self.text),
        }
    }
}

/// A detail in words: `submit to gpu-cluster, 2 files, 1.1 kB to upload`.
pub fn detail_text(detail: &Detail) -> String {
    match detail {
        Detail::EnvironmentVersion { version, upload } => match upload {
            None => format!("version {version}"),
            Some(Upload::InlineDockerfile) => {
                format!("version {version}, inline Dockerfile to upload")
            }
            Some(Upload::BuildContext { files, bytes }) => format!(
                "version {version}, build context {} to upload",
                super::size_summary(*files, *bytes)
            ),
        },
        Detail::Submit { cluster, code } => match code {
            None => format!("submit to {cluster}"),
            Some(CodeDetail::AlreadyUploaded) => {
                format!("submit to {cluster}, code already uploaded")
            }
            Some(CodeDetail::Upload { files, bytes }) => format!(
                "submit to {cluster}, {} to upload",
                super::size_summary(*files, *bytes)
            ),
        },
        Detail::Submitted { status } => format!(
            "submitted, {}",
            status.as_deref().unwrap_or("status unknown")
        ),
    }
}

/// A detail with its text masked.
fn redacted_detail(detail: &Detail, text: &impl Fn(&String) -> String) -> Detail {
    match detail {
        Detail::EnvironmentVersion { version, upload } => Detail::EnvironmentVersion {
            version: text(version),
            upload: upload.clone(),
        },
        Detail::Submit { cluster, code } => Detail::Submit {
            cluster: text(cluster),
            code: code.clone(),
        },
        Detail::Submitted { status } => Detail::Submitted {
            status: status.as_ref().map(text),
        },
    }
}

/// The resource's headline: `~ cluster gpu-cluster (update in place)`.
fn headline(change: &ResourceChange) -> Line {
    let what = match change.action {
        Action::Create => change.detail.as_ref().map(detail_text),
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
    let mut text = format!("{} {}", change.kind.label(), change.name);
    if let Some(what) = what {
        let _ = write!(text, " ({what})");
    }
    Line::new(Some(symbol(change.action)), &text)
}

/// Attribute lines under a resource.
fn attribute_lines(change: &ResourceChange) -> Vec<Line> {
    let mut lines = Vec::new();
    let after = change.after.as_ref();
    let before = change.before.as_ref();
    match change.action {
        Action::Create => {
            for (name, v) in after.into_iter().flatten() {
                lines.push(Line::new(Some("+"), &format!("{name}: {}", value(v))));
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
                    (Some(old), Some(new)) => Line::new(
                        Some("~"),
                        &format!("{name}: {} -> {}{forced}", value(old), value(new)),
                    ),
                    (None, Some(new)) => {
                        Line::new(Some("+"), &format!("{name}: {}{forced}", value(new)))
                    }
                    (Some(old), None) => {
                        Line::new(Some("-"), &format!("{name}: {}{forced}", value(old)))
                    }
                    (None, None) => continue,
                };
                lines.push(line);
            }
        }
        Action::Blocked => {
            if let Some(reason) = &change.reason {
                lines.push(Line::new(None, &format!("reason: {reason}")).marked('!'));
            }
        }
        Action::NoOp => {}
    }
    if change.action != Action::Blocked
        && change.action != Action::Replace
        && let Some(reason) = &change.reason
    {
        lines.push(Line::new(None, &format!("note: {reason}")));
    }
    // What preflight found; a blocking check is the reason above.
    for check in &change.checks {
        let (outcome, marker) = match check.outcome {
            Outcome::Ok => ("ok", ' '),
            Outcome::Warning => ("warning", '!'),
            Outcome::Blocked => continue,
        };
        let text = format!("{} {outcome}: {}", check.check.label(), check.message);
        lines.push(Line::new(None, &text).marked(marker));
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
            let note = format!(
                "note: {} {}: {}",
                r.kind.label(),
                r.name,
                r.reason.as_ref()?
            );
            Some(escape_text(&note).into_owned())
        })
        .collect();
    if !plan.targets.is_empty() {
        let note = format!(
            "note: --target {}: only these and what they need are in this plan",
            plan.targets.join(", ")
        );
        let _ = writeln!(out, "{}", escape_text(&note));
    }
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
        out.push_str(&unmanaged_lines(plan));
        return out;
    }
    for workspace in &plan.workspaces {
        let changed = changes(workspace);
        if changed.is_empty() {
            continue;
        }
        let header = format!(
            "workspace {} (resource group {})",
            workspace.name, workspace.resource_group
        );
        let _ = writeln!(out, "{}", escape_text(&header));
        for change in changed {
            let style = if styled {
                style(change.action)
            } else {
                Style::new()
            };
            let _ = writeln!(out, "  {style}{}{style:#}", headline(change).human());
            for line in attribute_lines(change) {
                let _ = writeln!(out, "      {style}{}{style:#}", line.human());
            }
        }
        out.push('\n');
    }
    for note in &notes {
        let _ = writeln!(out, "{note}");
    }
    let _ = writeln!(out, "{}", summary_line(&plan.summary));
    out.push_str(&unmanaged_lines(plan));
    out
}

/// `--unmanaged`: what no spec declares, after the plan (empty when there is none).
fn unmanaged_lines(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.unmanaged.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nNot in any spec ({}; amlspec leaves them as they are):",
        super::count(plan.unmanaged.len(), "resource", "resources")
    );
    for u in &plan.unmanaged {
        let line = format!("  {} {} in {}", u.kind.label(), u.name, u.workspace);
        let _ = writeln!(out, "{}", escape_text(&line));
    }
    out
}

/// `--format json`: the plan itself, versioned.
pub fn json(plan: &Plan) -> String {
    let mut text = serde_json::to_string_pretty(plan).expect("a plan serializes");
    text.push('\n');
    text
}

/// `--format markdown`: for a pull-request comment. Spec text stays inside a fenced
/// `diff` block longer than any run of backticks in it, or is escaped for HTML.
/// GitHub refuses pull-request comments longer than this many characters.
pub const COMMENT_LIMIT: usize = 65_536;
/// A step summary may hold up to 1 MiB.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;
/// Kept free below a limit for the note that says the plan was cut.
const CUT_NOTE_ROOM: usize = 1024;

/// The markdown form, short enough for a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    markdown_within(plan, COMMENT_LIMIT)
}

/// The markdown form in at most `limit` bytes (so as many characters): when the plan is
/// longer, its resources are shown up to the limit, then a note says how many are not.
pub fn markdown_within(plan: &Plan, limit: usize) -> String {
    let budget = limit.saturating_sub(CUT_NOTE_ROOM);
    let mut out = String::new();
    let s = &plan.summary;
    let _ = writeln!(out, "### amlspec plan\n");
    if !plan.has_changes() && !plan.is_blocked() {
        let _ = writeln!(
            out,
            "**No changes.** {} up to date.",
            super::count(s.unchanged, "resource is", "resources are")
        );
        unmanaged_markdown(plan, &mut out, budget);
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
    let total: usize = plan.workspaces.iter().map(|w| changes(w).len()).sum();
    let mut shown = 0;
    'workspaces: for workspace in &plan.workspaces {
        let changed = changes(workspace);
        if changed.is_empty() {
            continue;
        }
        let blocked = changed
            .iter()
            .filter(|c| c.action == Action::Blocked)
            .count();
        let count = match (changed.len() - blocked, blocked) {
            (changes, 0) => super::count(changes, "change", "changes"),
            (0, blocked) => format!("{blocked} blocked"),
            (changes, blocked) => format!(
                "{}, {blocked} blocked",
                super::count(changes, "change", "changes")
            ),
        };
        let blocks: Vec<Vec<String>> = changed
            .iter()
            .map(|change| {
                let mut head = headline(change);
                if change.action == Action::Blocked {
                    head.text.push_str(" (blocked)");
                }
                let mut lines = vec![head.diff(1)];
                lines.extend(attribute_lines(change).iter().map(|line| line.diff(5)));
                lines
            })
            .collect();
        let all: Vec<String> = blocks.iter().flatten().cloned().collect();
        let fence = "`".repeat(longest_backtick_run(&all).max(2) + 1);
        let open = format!(
            "<details><summary>workspace <code>{}</code> (resource group <code>{}</code>): {count}</summary>\n\n{fence}diff\n",
            escape_html(&workspace.name),
            escape_html(&workspace.resource_group),
        );
        let close = format!("{fence}\n\n</details>\n\n");
        if out.len() + open.len() + close.len() > budget {
            break;
        }
        out.push_str(&open);
        for block in blocks {
            let size: usize = block.iter().map(|l| l.len() + 1).sum();
            if out.len() + size + close.len() > budget {
                out.push_str(&close);
                break 'workspaces;
            }
            for line in block {
                out.push_str(&line);
                out.push('\n');
            }
            shown += 1;
        }
        out.push_str(&close);
    }
    if shown < total {
        let _ = writeln!(
            out,
            "**The plan is cut here to fit:** {shown} of {total} changed resources shown. The whole plan is in the job's log and step summary, and `amlspec show` renders a saved plan."
        );
    } else {
        unmanaged_markdown(plan, &mut out, budget);
    }
    out
}

/// `--unmanaged`, in markdown: as many as fit in `budget`.
fn unmanaged_markdown(plan: &Plan, out: &mut String, budget: usize) {
    if plan.unmanaged.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n**Not in any spec** ({}; amlspec leaves them as they are):\n",
        super::count(plan.unmanaged.len(), "resource", "resources")
    );
    for (i, u) in plan.unmanaged.iter().enumerate() {
        let line = format!(
            "- {} <code>{}</code> in <code>{}</code>\n",
            u.kind.label(),
            escape_html(&u.name),
            escape_html(u.workspace.as_str())
        );
        if out.len() + line.len() > budget {
            let _ = writeln!(out, "- and {} more", plan.unmanaged.len() - i);
            return;
        }
        out.push_str(&line);
    }
}

fn longest_backtick_run(lines: &[String]) -> usize {
    lines
        .iter()
        .flat_map(|line| line.split(|c| c != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

/// `--format github`: one workflow command per changed resource, on its spec line.
/// Text is escaped as GitHub asks (`%`, CR and LF in the message; also `:` and `,` in
/// properties), after its control characters are shown as escapes.
pub fn github_annotations(plan: &Plan, paths: &super::GithubPaths) -> String {
    let mut by_level: [(&str, &str, Vec<String>); 3] = [
        ("error", "blocked resources", Vec::new()),
        ("warning", "replacements", Vec::new()),
        ("notice", "changes", Vec::new()),
    ];
    for change in plan.resources().filter(|r| r.action != Action::NoOp) {
        let level = match change.action {
            Action::Blocked => 0,
            Action::Replace => 1,
            _ => 2,
        };
        let mut message = headline(change).human();
        for line in attribute_lines(change) {
            message.push('\n');
            message.push_str(&line.human());
        }
        let location = match &change.origin {
            Some(origin) => format!(
                "file={},line={},col={},",
                escape_property(&escape_text(&paths.file(&origin.file))),
                origin.line,
                origin.column
            ),
            None => String::new(),
        };
        let title = format!("amlspec plan: {} {}", change.kind.label(), change.name);
        by_level[level].2.push(format!(
            "::{} {location}title={}::{}",
            by_level[level].0,
            escape_property(&escape_text(&title)),
            escape_data(&message)
        ));
    }
    // GitHub shows at most 10 annotations of a level per step (50 per job): the first
    // of each level, the most important first, then one that counts the rest.
    let mut out = String::new();
    for (level, what, mut commands) in by_level {
        if commands.len() > ANNOTATIONS_PER_LEVEL {
            let rest = commands.len() - (ANNOTATIONS_PER_LEVEL - 1);
            commands.truncate(ANNOTATIONS_PER_LEVEL - 1);
            commands.push(format!(
                "::{level} title={}::{}",
                escape_property("amlspec plan"),
                escape_data(&format!(
                    "{rest} more {what} are not annotated (GitHub shows 10 annotations of a kind per step): see the plan in the log"
                ))
            ));
        }
        for command in commands {
            let _ = writeln!(out, "{command}");
        }
    }
    out
}

/// GitHub shows at most this many annotations of one level per step.
pub const ANNOTATIONS_PER_LEVEL: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan that creates `n` clusters in an existing workspace.
    fn many_clusters(n: usize) -> Plan {
        use crate::observe::Live;
        use crate::plan::testing::{WORKSPACE, desired, live_workspace, observed};
        let mut spec = format!("{WORKSPACE}clusters:\n");
        for i in 0..n {
            spec.push_str(&format!(
                "  - name: cluster{i}\n    vm_size: Standard_NC6\n    max_nodes: 4\n"
            ));
        }
        crate::plan::plan(
            &desired(&spec),
            &observed(
                Live::Present(live_workspace("westeurope")),
                (0..n).map(|_| Live::Missing).collect(),
            ),
        )
    }

    #[test]
    fn annotations_stay_within_githubs_ten_per_level() {
        for (n, shown, more) in [(10, 10, None), (11, 10, Some(2)), (25, 10, Some(16))] {
            let text =
                github_annotations(&many_clusters(n), &crate::render::GithubPaths::default());
            let notices: Vec<&str> = text.lines().filter(|l| l.starts_with("::notice")).collect();
            assert_eq!(notices.len(), shown, "{n}");
            match more {
                None => assert!(!text.contains("more changes")),
                Some(more) => assert!(
                    notices[9].contains(&format!("{more} more changes are not annotated")),
                    "{}",
                    notices[9]
                ),
            }
        }
    }

    #[test]
    fn markdown_is_cut_to_fit_a_comment_and_says_so() {
        let plan = many_clusters(40);
        let whole = markdown_within(&plan, STEP_SUMMARY_LIMIT);
        assert!(!whole.contains("cut here"));
        assert_eq!(whole.matches("+ cluster cluster").count(), 40);
        let cut = markdown_within(&plan, 4000);
        assert!(cut.len() <= 4000, "{}", cut.len());
        let shown = cut.matches("+ cluster cluster").count();
        assert!(shown > 0 && shown < 40, "{shown}");
        assert!(
            cut.contains(&format!("{shown} of 40 changed resources shown")),
            "{cut}"
        );
        // The fence and the details it opened are closed before the note.
        assert_eq!(
            cut.matches("<details>").count(),
            cut.matches("</details>").count()
        );
        assert_eq!(cut.matches("```").count() % 2, 0);
        assert_eq!(markdown(&plan), markdown_within(&plan, COMMENT_LIMIT));
    }
}
