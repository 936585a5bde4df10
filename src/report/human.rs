//! `depfw audit` (default format): a table a person reads in a terminal or CI log.
//!
//! Results are grouped by verdict, worst first; each row names the package, where the
//! lockfile pins it, the advisory ids and the reasons, plus the version to upgrade to when an
//! advisory names a fix. Colour is the caller's decision (a terminal, not a pipe).

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use super::{AuditReport, AuditResult};
use crate::policy::Verdict;

/// The table's sections, worst first; allowed results have nothing to show.
const GROUPS: [Verdict; 3] = [Verdict::Deny, Verdict::Quarantine, Verdict::Warn];

const HEADERS: [&str; 5] = ["ECOSYSTEM", "PACKAGE", "LOCKFILE", "IDS", "REASON"];

/// One table row before styling: the four fixed columns and the reason lines.
struct Row {
    cells: [String; 4],
    reasons: Vec<String>,
}

impl Row {
    fn of(result: &AuditResult) -> Row {
        let location = match result.line {
            Some(line) => format!("{}:{line}", result.lockfile.display()),
            None => result.lockfile.display().to_string(),
        };
        // Allow-level notes only add noise next to the findings that set the verdict.
        let mut reasons: Vec<String> = result
            .findings
            .iter()
            .filter(|f| f.verdict >= Verdict::Warn)
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect();
        if let Some(version) = &result.upgrade_to {
            reasons.push(format!("fix: upgrade to {}", shown_fix(result, version)));
        } else if result.fixes_all_refused() {
            reasons.push("fix: none known that the policy allows".to_owned());
        }
        if reasons.is_empty() {
            reasons.push(String::new());
        }
        Row {
            cells: [
                result.ecosystem.to_string(),
                format!("{}@{}", result.name, result.version),
                location,
                result.ids.join(", "),
            ],
            reasons,
        }
    }
}

/// RustSec's OSV export turns "unaffected: > 0.2.36" into `fixed: 0.2.37-0`, a version no
/// one publishes; `>= 0.2.37` says the same to a person. (PyPI's `1.0-0` is a real
/// post-release, so only semver ecosystems are rewritten.)
fn shown_fix(result: &AuditResult, version: &str) -> String {
    match version.strip_suffix("-0") {
        Some(release) if result.ecosystem != crate::package::Ecosystem::PyPI => {
            format!(">= {release}")
        }
        _ => version.to_owned(),
    }
}

fn style_for(verdict: Verdict) -> Style {
    let colour = match verdict {
        Verdict::Deny => AnsiColor::Red,
        Verdict::Quarantine => AnsiColor::Yellow,
        Verdict::Warn => AnsiColor::Cyan,
        Verdict::Allow => AnsiColor::Green,
    };
    Style::new().bold().fg_color(Some(colour.into()))
}

/// `text` in `style` when colour is on.
fn paint(text: &str, style: Style, color: bool) -> String {
    if color {
        format!("{}{text}{}", style.render(), style.render_reset())
    } else {
        text.to_owned()
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Writes the table, the lockfile errors and the summary line.
pub fn render_human(report: &AuditReport, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let groups: Vec<(Verdict, Vec<Row>)> = GROUPS
        .iter()
        .map(|verdict| {
            let rows = report
                .results
                .iter()
                .filter(|r| r.verdict == *verdict)
                .map(Row::of)
                .collect();
            (*verdict, rows)
        })
        .filter(|(_, rows): &(Verdict, Vec<Row>)| !rows.is_empty())
        .collect();

    // One set of widths for every group, so the columns line up down the whole report.
    let mut widths: [usize; 4] = std::array::from_fn(|i| HEADERS[i].chars().count());
    for row in groups.iter().flat_map(|(_, rows)| rows) {
        for (width, cell) in widths.iter_mut().zip(&row.cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let pad = |text: &str, width: usize| {
        let fill = width.saturating_sub(text.chars().count());
        format!("{text}{}", " ".repeat(fill))
    };
    let header_style = Style::new().bold();

    for (verdict, rows) in &groups {
        let title = format!("{} ({})", verdict.as_str().to_uppercase(), rows.len());
        writeln!(out, "{}", paint(&title, style_for(*verdict), color))?;
        let header: Vec<String> = HEADERS[..4]
            .iter()
            .zip(widths)
            .map(|(h, w)| pad(h, w))
            .collect();
        let header = format!("  {}  {}", header.join("  "), HEADERS[4]);
        writeln!(out, "{}", paint(&header, header_style, color))?;
        for row in rows {
            let cells: Vec<String> = row
                .cells
                .iter()
                .zip(widths)
                .map(|(c, w)| pad(c, w))
                .collect();
            let blank: Vec<String> = widths.iter().map(|w| " ".repeat(*w)).collect();
            for (i, reason) in row.reasons.iter().enumerate() {
                let prefix = if i == 0 { &cells } else { &blank };
                let line = format!("  {}  {reason}", prefix.join("  "));
                writeln!(out, "{}", line.trim_end())?;
            }
        }
        writeln!(out)?;
    }
    let errors: Vec<_> = report.lockfile_errors().collect();
    if groups.is_empty() && errors.is_empty() {
        writeln!(
            out,
            "{}",
            paint("No problems found.", style_for(Verdict::Allow), color)
        )?;
        writeln!(out)?;
    }

    if !errors.is_empty() {
        let title = format!("LOCKFILE ERRORS ({})", errors.len());
        writeln!(out, "{}", paint(&title, style_for(Verdict::Deny), color))?;
        for (lockfile, error) in errors {
            writeln!(out, "  {}: {error}", lockfile.path.display())?;
        }
        writeln!(out)?;
    }

    let counts = report.counts();
    writeln!(
        out,
        "{} in {}: {} denied, {} quarantined, {}",
        plural(report.packages_scanned, "package", "packages"),
        plural(report.lockfiles.len(), "lockfile", "lockfiles"),
        counts.denied,
        counts.quarantined,
        plural(counts.warnings, "warning", "warnings"),
    )
}
