//! Release cooldowns as each package manager spells them, for `depfw init <client>` (which
//! prints the client's own setting with depfw's age) and `depfw doctor` (which reads it
//! back from a project and compares).
//!
//! A client-side cooldown that agrees with depfw's means the resolver never picks a version
//! depfw would hold back, so installs fail less and lockfiles stay installable. The names,
//! units and defaults were read from the pinned clients themselves (2026-12-03):
//! npm 11.19 `min-release-age` (days, a number), pnpm 12.23 `minimumReleaseAge`
//! (minutes, built-in default 1440), yarn 4.18 `npmMinimalAgeGate` (a duration, minutes
//! when bare, default `1d`), bun 1.4 `[install] minimumReleaseAge` (seconds), uv 0.13
//! `exclude-newer` (a date or a duration such as `48 hours`), poetry 2.5
//! `solver.min-release-age` (whole days). pip has only a fixed date (pip ≥ 26
//! `--uploaded-prior-to`), cargo nothing.

use crate::cli::init::Client;
use crate::config::Config;
use crate::diag::Verdict;

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// The minimum release age depfw enforces, in hours, for anonymous clients (`agent`
/// false) or an agent. `None` when it enforces none: a zero `cooldown-hours`, or a
/// cooldown verdict that lets the version through. A `warn` cooldown refuses nothing
/// except for agents on the `strict` preset, which turns `warn` into a refusal: for an
/// agent it counts (the second field says it holds for strict agents only).
pub(crate) fn enforced_hours(config: &Config, agent: bool) -> Option<(u64, bool)> {
    let rep = &config.policy.reputation;
    if rep.cooldown_hours == 0 {
        return None;
    }
    match rep.cooldown {
        Verdict::Quarantine | Verdict::Deny => Some((rep.cooldown_hours, false)),
        Verdict::Warn if agent => Some((rep.cooldown_hours, true)),
        _ => None,
    }
}

/// The lines `depfw init <client>` prints after the registry configuration: the client's
/// own cooldown with depfw's age, or a comment when the client has none. `pyproject`: the
/// snippet before it is a pyproject.toml (uv's agent snippet), not the environment.
pub(crate) fn init_lines(client: Client, enforced: Option<(u64, bool)>, pyproject: bool) -> String {
    let Some((hours, strict_only)) = enforced else {
        return "# release cooldown: depfw enforces none (policy.reputation.cooldown-hours)\n"
            .to_owned();
    };
    let mut out = format!(
        "# release cooldown: the client skips versions younger than depfw's {hours}h \
         (policy.reputation.cooldown-hours){}\n",
        if strict_only {
            ", refused only for `strict` agents (policy.reputation.cooldown = warn)"
        } else {
            ""
        }
    );
    let secs = hours * HOUR;
    out.push_str(&match client {
        Client::Npm => format!("min-release-age={}\n", npm_days(secs)),
        Client::Pnpm => format!(
            "# pnpm-workspace.yaml (minutes)\nminimumReleaseAge: {}\n",
            secs / MINUTE
        ),
        Client::Yarn => format!("npmMinimalAgeGate: \"{hours}h\"\n"),
        // The bun snippets end inside `[install]`.
        Client::Bun => format!("minimumReleaseAge = {secs} # seconds\n"),
        // Beside the snippet's own form: a pyproject table, or the environment.
        Client::Uv if pyproject => format!(
            "# pyproject.toml (or exclude-newer in uv.toml)\n\
             [tool.uv]\nexclude-newer = \"{hours} hours\"\n"
        ),
        Client::Uv => format!(
            "# or exclude-newer = \"{hours} hours\" in uv.toml, or under [tool.uv] in pyproject.toml\n\
             export UV_EXCLUDE_NEWER=\"{hours} hours\"\n"
        ),
        Client::Poetry => {
            let days = secs.div_ceil(DAY);
            let rounded = if secs.is_multiple_of(DAY) {
                ""
            } else {
                " (whole days: rounded up)"
            };
            format!(
                "# poetry.toml beside pyproject.toml, days{rounded}; or export POETRY_SOLVER_MIN_RELEASE_AGE={days}\n\
                 [solver]\nmin-release-age = {days}\n"
            )
        }
        Client::Pip => "# pip has no release-age setting (pip 26's --uploaded-prior-to takes a \
             fixed date): depfw's cooldown is the only one\n"
            .to_owned(),
        Client::Cargo => "# cargo has no release-age setting: depfw's cooldown is the only one\n"
            .to_owned(),
        Client::AgentRules => String::new(),
    });
    out
}

/// npm's days, a JavaScript number: exact when whole, else rounded up at four decimals so
/// that npm's window is never shorter than depfw's.
fn npm_days(secs: u64) -> String {
    if secs.is_multiple_of(DAY) {
        return (secs / DAY).to_string();
    }
    let ten_thousandths = (secs * 10_000).div_ceil(DAY);
    let text = format!(
        "{}.{:04}",
        ten_thousandths / 10_000,
        ten_thousandths % 10_000
    );
    text.trim_end_matches('0').to_owned()
}

/// npm's `min-release-age` (days, may be fractional) in seconds.
pub(crate) fn parse_npm_days(value: &str) -> Option<u64> {
    let days: f64 = value.trim().parse().ok()?;
    (days.is_finite() && (0.0..1e9).contains(&days)).then(|| (days * DAY as f64).round() as u64)
}

/// A duration as yarn's `npmMinimalAgeGate` takes it: a bare number is minutes, else a
/// number with `ms`, `s`, `m`, `h`, `d` or `w`.
pub(crate) fn parse_yarn_duration(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit_secs = match unit.trim() {
        "" | "m" => 60.0,
        "ms" => 0.001,
        "s" => 1.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => return None,
    };
    to_secs(number * unit_secs)
}

/// What uv's `exclude-newer` says: a relative duration (`48 hours`, `1 week`, `P7D`,
/// `PT24H`), or a fixed date, which is not a cooldown at all.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UvExclude {
    Duration(u64),
    FixedDate,
}

pub(crate) fn parse_uv_exclude_newer(value: &str) -> Option<UvExclude> {
    let value = value.trim();
    if let Some(iso) = value.strip_prefix('P') {
        return parse_iso_duration(iso).map(UvExclude::Duration);
    }
    if value.len() >= 10 && value.as_bytes()[4] == b'-' && value.as_bytes()[7] == b'-' {
        return Some(UvExclude::FixedDate);
    }
    // "friendly": `N unit`, possibly several (`1 day 12 hours`).
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) || words.len() > 16 {
        return None;
    }
    let mut total = 0f64;
    for pair in words.chunks(2) {
        let number: f64 = pair[0].parse().ok()?;
        total += number * friendly_unit(pair[1])?;
    }
    to_secs(total).map(UvExclude::Duration)
}

fn friendly_unit(word: &str) -> Option<f64> {
    Some(match word.trim_end_matches('s') {
        "second" | "sec" | "" => 1.0,
        "minute" | "min" | "m" => 60.0,
        "hour" | "hr" | "h" => 3600.0,
        "day" | "d" => 86_400.0,
        "week" | "w" => 604_800.0,
        _ => return None,
    })
}

/// The part of an ISO 8601 duration after `P`: `7D`, `1W`, `T24H`, `1DT12H`.
fn parse_iso_duration(text: &str) -> Option<u64> {
    let mut total = 0f64;
    let mut in_time = false;
    let mut number = String::new();
    for c in text.chars() {
        match c {
            'T' if number.is_empty() => in_time = true,
            '0'..='9' | '.' if number.len() < 16 => number.push(c),
            _ => {
                let n: f64 = number.parse().ok()?;
                number.clear();
                total += n * match (c, in_time) {
                    ('W', false) => 604_800.0,
                    ('D', false) => 86_400.0,
                    ('H', true) => 3600.0,
                    ('M', true) => 60.0,
                    ('S', true) => 1.0,
                    _ => return None,
                };
            }
        }
    }
    if !number.is_empty() {
        return None;
    }
    to_secs(total)
}

fn to_secs(value: f64) -> Option<u64> {
    (value.is_finite() && (0.0..1e15).contains(&value)).then(|| value.round() as u64)
}

/// A cooldown in words for findings: `48h`, `1.5d`, `90s`.
pub(crate) fn human(secs: u64) -> String {
    if secs.is_multiple_of(HOUR) {
        format!("{}h", secs / HOUR)
    } else if secs.is_multiple_of(MINUTE) {
        format!("{}min", secs / MINUTE)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_lines_carry_depfw_age_in_each_clients_unit() {
        let age = Some((48, false));
        assert!(init_lines(Client::Npm, age, false).ends_with("\nmin-release-age=2\n"));
        assert!(init_lines(Client::Pnpm, age, false).ends_with("\nminimumReleaseAge: 2880\n"));
        assert!(init_lines(Client::Yarn, age, false).ends_with("\nnpmMinimalAgeGate: \"48h\"\n"));
        assert!(init_lines(Client::Bun, age, false).contains("\nminimumReleaseAge = 172800 "));
        assert!(init_lines(Client::Uv, age, false)
            .ends_with("\nexport UV_EXCLUDE_NEWER=\"48 hours\"\n"));
        assert!(init_lines(Client::Uv, age, true)
            .ends_with("\n[tool.uv]\nexclude-newer = \"48 hours\"\n"));
        assert!(init_lines(Client::Poetry, age, false).ends_with("\nmin-release-age = 2\n"));
        for c in [Client::Pip, Client::Cargo] {
            let lines = init_lines(c, age, false);
            assert!(lines.lines().all(|l| l.starts_with('#')), "{lines}");
            assert!(lines.contains("no release-age setting"), "{lines}");
        }
        let strict = init_lines(Client::Npm, Some((48, true)), false);
        assert!(strict.contains("only for `strict` agents"), "{strict}");
        let none = init_lines(Client::Npm, None, false);
        assert!(
            none.starts_with('#') && none.contains("enforces none"),
            "{none}"
        );
    }

    #[test]
    fn uneven_ages_never_come_out_shorter() {
        assert_eq!(npm_days(36 * HOUR), "1.5");
        assert_eq!(npm_days(HOUR), "0.0417");
        assert!(parse_npm_days(&npm_days(HOUR)).unwrap() >= HOUR);
        let poetry = init_lines(Client::Poetry, Some((36, false)), false);
        assert!(poetry.contains("min-release-age = 2\n") && poetry.contains("rounded up"));
    }

    #[test]
    fn enforced_age_follows_the_cooldown_verdict_and_strict_agents() {
        let mut config = Config::default();
        assert_eq!(enforced_hours(&config, false), Some((48, false)));
        config.policy.reputation.cooldown = Verdict::Warn;
        assert_eq!(enforced_hours(&config, false), None);
        assert_eq!(enforced_hours(&config, true), Some((48, true)));
        config.policy.reputation.cooldown = Verdict::Deny;
        config.policy.reputation.cooldown_hours = 0;
        assert_eq!(enforced_hours(&config, true), None);
    }

    #[test]
    fn client_durations_parse_in_their_units() {
        assert_eq!(parse_npm_days("2"), Some(2 * DAY));
        assert_eq!(parse_npm_days("-1"), None);
        assert_eq!(parse_npm_days("soon"), None);
        assert_eq!(parse_yarn_duration("2880"), Some(2 * DAY));
        assert_eq!(parse_yarn_duration("48h"), Some(2 * DAY));
        assert_eq!(parse_yarn_duration("2d"), Some(2 * DAY));
        assert_eq!(parse_yarn_duration("1y"), None);
        use UvExclude::*;
        assert_eq!(parse_uv_exclude_newer("48 hours"), Some(Duration(2 * DAY)));
        assert_eq!(parse_uv_exclude_newer("1 week"), Some(Duration(7 * DAY)));
        assert_eq!(parse_uv_exclude_newer("P2D"), Some(Duration(2 * DAY)));
        assert_eq!(parse_uv_exclude_newer("PT24H"), Some(Duration(DAY)));
        assert_eq!(parse_uv_exclude_newer("P1DT12H"), Some(Duration(36 * HOUR)));
        assert_eq!(
            parse_uv_exclude_newer("2026-01-01T00:00:00Z"),
            Some(FixedDate)
        );
        assert_eq!(parse_uv_exclude_newer("bogus"), None);
        assert_eq!(parse_uv_exclude_newer("P"), Some(Duration(0)));
        assert_eq!(parse_uv_exclude_newer("PX"), None);
    }
}
