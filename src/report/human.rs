//! `depfw audit` (default format): a table a person reads in a terminal or CI log.
//!
//! Results are grouped by verdict, worst first; each row names the package, where the
//! lockfile pins it, the advisory ids and the reasons, plus the version to upgrade to when an
//! advisory names a fix. Colour and width are the caller's decision (a terminal, not a
//! pipe): given a width, long names and paths are shortened with `…`, ids stack and reasons
//! wrap so that no line is wider (a real package-lock.json made a 650-column table);
//! without one, every row stays on its lines whole, for grep and for log viewers that wrap.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use super::{AuditReport, AuditResult};
use crate::policy::Verdict;

/// The table's sections, worst first; allowed results have nothing to show.
const GROUPS: [Verdict; 3] = [Verdict::Deny, Verdict::Quarantine, Verdict::Warn];

const HEADERS: [&str; 5] = ["ECOSYSTEM", "PACKAGE", "LOCKFILE", "IDS", "REASON"];

/// One table row before styling: the three fixed columns, the ids and the reason lines.
struct Row {
    cells: [String; 3],
    ids: Vec<String>,
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
            ],
            ids: result.ids.clone(),
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

/// Writes the table, the lockfile errors and the summary line, each row on as few lines
/// as it needs however wide.
pub fn render_human(report: &AuditReport, color: bool, out: &mut dyn Write) -> io::Result<()> {
    render_human_width(report, color, None, out)
}

/// How rows are laid out.
enum Fit {
    /// No width: every cell whole, each reason on one line.
    Whole,
    /// Five columns, the reasons wrapped to `reason` characters.
    Columns { reason: usize },
    /// Too narrow for columns: the package and lockfile on one line, then the ids and the
    /// reasons below, indented, wrapped to `width`.
    Stacked { width: usize },
}

/// The widths of the four fixed columns, and how rows fit.
struct Layout {
    fixed: [usize; 4],
    fit: Fit,
}

/// The narrowest a shortened package or lockfile column gets.
const MIN_COLUMN: usize = 16;
/// Narrower reasons than this read badly: the rows are stacked instead.
const MIN_REASON: usize = 30;
/// Below this, even stacked rows cannot be fitted sensibly; lines may then be wider.
const MIN_WIDTH: usize = 40;
/// The indent of a stacked row's ids and reasons.
const STACK_INDENT: usize = 6;

impl Layout {
    fn of(rows: &[&Row], width: Option<usize>) -> Layout {
        let mut fixed: [usize; 4] = std::array::from_fn(|i| chars(HEADERS[i]));
        // An id stacked under another keeps its `,`.
        let mut longest_id = 0;
        for row in rows {
            for (w, cell) in fixed.iter_mut().zip(&row.cells) {
                *w = (*w).max(chars(cell));
            }
            fixed[3] = fixed[3].max(chars(&row.ids.join(", ")));
            longest_id = row
                .ids
                .iter()
                .map(|id| chars(id) + 1)
                .fold(longest_id, usize::max);
        }
        let Some(width) = width else {
            return Layout {
                fixed,
                fit: Fit::Whole,
            };
        };
        // A quarter of the line at most for the package and for the lockfile, ids stacked
        // in a column as wide as the longest, and the rest for the reasons; when that
        // leaves too little, the package and lockfile give way down to MIN_COLUMN.
        let quarter = (width / 4).max(MIN_COLUMN);
        fixed[1] = fixed[1].min(quarter);
        fixed[2] = fixed[2].min(quarter);
        fixed[3] = fixed[3].min(longest_id.max(chars(HEADERS[3])));
        let used = |fixed: &[usize; 4]| 2 + fixed.iter().map(|w| w + 2).sum::<usize>();
        let mut deficit = (used(&fixed) + MIN_REASON).saturating_sub(width);
        for column in [2, 1] {
            let give = deficit.min(fixed[column].saturating_sub(MIN_COLUMN));
            fixed[column] -= give;
            deficit -= give;
        }
        let fit = if deficit == 0 {
            Fit::Columns {
                reason: width - used(&fixed),
            }
        } else {
            Fit::Stacked {
                width: width.max(MIN_WIDTH),
            }
        };
        Layout { fixed, fit }
    }

    /// The header line (without styling).
    fn header(&self) -> String {
        if let Fit::Stacked { .. } = self.fit {
            return format!("  {}  {}  {}", HEADERS[0], HEADERS[1], HEADERS[2]);
        }
        let header: Vec<String> = HEADERS[..4]
            .iter()
            .zip(self.fixed)
            .map(|(h, w)| pad(h, w))
            .collect();
        format!("  {}  {}", header.join("  "), HEADERS[4])
    }

    /// The lines of `row`: its cells fitted to their columns, ids packed and reasons wrapped.
    fn lines(&self, row: &Row) -> Vec<String> {
        let [eco, package, location] = &row.cells;
        let (cells, ids, reasons) = match self.fit {
            Fit::Whole => (
                row.cells.clone(),
                vec![row.ids.join(", ")],
                row.reasons.clone(),
            ),
            Fit::Columns { reason } => (
                [
                    eco.clone(),
                    shorten_package(package, self.fixed[1]),
                    shorten_left(location, self.fixed[2]),
                ],
                pack(&row.ids, self.fixed[3]),
                row.reasons.iter().flat_map(|r| wrap(r, reason)).collect(),
            ),
            Fit::Stacked { width } => return stacked(row, width),
        };
        let height = ids.len().max(reasons.len()).max(1);
        (0..height)
            .map(|i| {
                let mut line = String::from(" ");
                for (c, cell) in cells.iter().enumerate() {
                    line.push(' ');
                    let text = if i == 0 { cell.as_str() } else { "" };
                    line.push_str(&pad(text, self.fixed[c]));
                    line.push(' ');
                }
                line.push(' ');
                line.push_str(&pad(ids.get(i).map_or("", String::as_str), self.fixed[3]));
                line.push_str("  ");
                line.push_str(reasons.get(i).map_or("", String::as_str));
                line.trim_end().to_owned()
            })
            .collect()
    }
}

/// A row on a narrow terminal: `ecosystem  package  lockfile`, then the ids and reasons
/// indented below.
fn stacked(row: &Row, width: usize) -> Vec<String> {
    let [eco, package, location] = &row.cells;
    let room = width.saturating_sub(chars(eco) + 6);
    let package = shorten_package(package, room / 2);
    let location = shorten_left(location, room.saturating_sub(chars(&package)));
    let indent = " ".repeat(STACK_INDENT);
    let inner = width - STACK_INDENT;
    let mut lines = vec![format!("  {eco}  {package}  {location}")];
    lines.extend(
        pack(&row.ids, inner)
            .into_iter()
            .map(|l| format!("{indent}{l}")),
    );
    lines.extend(
        row.reasons
            .iter()
            .flat_map(|r| wrap(r, inner))
            .filter(|l| !l.is_empty())
            .map(|l| format!("{indent}{l}")),
    );
    lines
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

fn pad(text: &str, width: usize) -> String {
    let fill = width.saturating_sub(chars(text));
    format!("{text}{}", " ".repeat(fill))
}

/// `name@version` cut to `width` characters: the version is kept whole when it leaves room
/// for a few characters of the name, which is cut in the middle.
fn shorten_package(spec: &str, width: usize) -> String {
    match spec.rfind('@').filter(|&at| at > 0) {
        Some(at) if chars(&spec[at..]) + 5 <= width => {
            let version = &spec[at..];
            let name = shorten_middle(&spec[..at], width - chars(version));
            format!("{name}{version}")
        }
        _ => shorten_middle(spec, width),
    }
}

/// `text` cut to `width` characters in the middle.
fn shorten_middle(text: &str, width: usize) -> String {
    let n = chars(text);
    if n <= width || width < 3 {
        return text.to_owned();
    }
    let head = (width - 1) / 2;
    let tail = width - 1 - head;
    let chars: Vec<char> = text.chars().collect();
    let mut s: String = chars[..head].iter().collect();
    s.push('…');
    s.extend(&chars[n - tail..]);
    s
}

/// `text` cut to `width` characters from the left (a path keeps its file and line).
fn shorten_left(text: &str, width: usize) -> String {
    let n = chars(text);
    if n <= width || width < 2 {
        return text.to_owned();
    }
    let mut s = String::from("…");
    s.extend(text.chars().skip(n - (width - 1)));
    s
}

/// `ids` joined with `, ` on as few lines of `width` as they fit on (one each at least).
fn pack(ids: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let sep = if i + 1 < ids.len() { "," } else { "" };
        match lines.last_mut() {
            Some(line) if chars(line) + 1 + chars(id) + sep.len() <= width => {
                line.push(' ');
                line.push_str(id);
                line.push_str(sep);
            }
            _ => lines.push(format!("{id}{sep}")),
        }
    }
    lines
}

/// `text` broken at spaces into lines of at most `width` characters; a word longer than a
/// line is split.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..width).collect());
        }
        let len = chars(&line);
        if len > 0 && len + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.extend(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// [`render_human`] fitted to `width` columns when given (a terminal's width).
pub fn render_human_width(
    report: &AuditReport,
    color: bool,
    width: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
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
    let all: Vec<&Row> = groups.iter().flat_map(|(_, rows)| rows).collect();
    let layout = Layout::of(&all, width);
    let header_style = Style::new().bold();

    for (verdict, rows) in &groups {
        let title = format!("{} ({})", verdict.as_str().to_uppercase(), rows.len());
        writeln!(out, "{}", paint(&title, style_for(*verdict), color))?;
        writeln!(out, "{}", paint(&layout.header(), header_style, color))?;
        for row in rows {
            for line in layout.lines(row) {
                writeln!(out, "{line}")?;
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
