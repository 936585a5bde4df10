//! The reputation check: `depfw serve` holds brand-new releases and brand-new packages, and
//! flags install scripts, deprecations and yanks, from registry metadata alone.
//!
//! Most malicious releases are reported within hours or days of publication, so a cooldown
//! lets the advisory feeds catch up before anyone installs them. Names registered days ago are
//! the raw material of typosquatting and "slopsquatting" (names an AI assistant invented).
//!
//! Codes: `release-cooldown`, `publish-time-unknown`, `new-package`, `install-scripts`,
//! `deprecated`, `yanked`.
//! A publish time in the future (clock skew between depfw and the registry) counts as age
//! zero, never as negative; a version with no publish time at all gets `publish-time-unknown`
//! (default quarantine) while the cooldown is on, never a silent pass. A zero `cooldown-hours`
//! or `new-package-days` disables that rule. Without metadata (offline) the check reports
//! nothing.

pub(crate) mod cfg;

pub use cfg::ReputationConfig;

use chrono::{DateTime, Duration, Utc};

use super::{Check, Finding, PackageCtx, Severity};
use crate::diag::{checks, Code};

/// `reputation` findings from registry metadata; see the module docs.
pub struct ReputationCheck {
    config: ReputationConfig,
}

impl ReputationCheck {
    pub fn new(config: ReputationConfig) -> Self {
        ReputationCheck { config }
    }
}

/// How long ago `then` was, never negative.
fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).max(Duration::zero())
}

/// "5h 12m", "3d 4h": precise enough for a person deciding whether to wait.
fn human_duration(d: Duration) -> String {
    let minutes = d.num_minutes();
    let (days, hours, mins) = (minutes / 1440, (minutes / 60) % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{mins}m"),
        (0, _) => format!("{hours}h {mins}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// When a window opened at `start` closes, for messages.
fn clears_at(start: DateTime<Utc>, window: Duration) -> String {
    start.checked_add_signed(window).map_or_else(
        || "never".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A window length in the units a config value uses, saturating instead of overflowing.
fn window(hours: u64) -> Duration {
    Duration::try_hours(i64::try_from(hours).unwrap_or(i64::MAX)).unwrap_or(Duration::MAX)
}

impl Check for ReputationCheck {
    fn name(&self) -> &'static str {
        checks::REPUTATION
    }

    fn evaluate(&self, ctx: &PackageCtx<'_>, findings: &mut Vec<Finding>) {
        let Some(meta) = ctx.metadata else {
            return;
        };
        let c = &self.config;

        match meta.published {
            _ if c.cooldown_hours == 0 => {}
            Some(published) => {
                let age = age(ctx.now, published);
                let cooldown = window(c.cooldown_hours);
                if age < cooldown {
                    findings.push(Finding::new(
                        Code::ReleaseCooldown,
                        Severity::Low,
                        c.cooldown,
                        format!(
                            "published {} ago, within the {}h cooldown; clears at {}",
                            human_duration(age),
                            c.cooldown_hours,
                            clears_at(published, cooldown),
                        ),
                    ));
                }
            }
            // Never a silent pass: a version of unknown age may be one minute old.
            None if meta.publish_time_expected => findings.push(Finding::new(
                Code::PublishTimeUnknown,
                Severity::Low,
                c.publish_time_unknown,
                format!(
                    "the registry metadata gives no publish time for this version, so the {}h \
                     cooldown cannot be checked",
                    c.cooldown_hours
                ),
            )),
            // A lockfile's record, which never carries times (offline audit).
            None => {}
        }

        if let Some(created) = meta.package_created.filter(|_| c.new_package_days > 0) {
            let age = age(ctx.now, created);
            let window = window(c.new_package_days.saturating_mul(24));
            if age < window {
                findings.push(Finding::new(
                    Code::NewPackage,
                    Severity::Medium,
                    c.new_package,
                    format!(
                        "package first published {} ago, less than {} days; clears at {}",
                        human_duration(age),
                        c.new_package_days,
                        clears_at(created, window),
                    ),
                ));
            }
        }

        if meta.has_install_scripts == Some(true) {
            findings.push(Finding::new(
                Code::InstallScripts,
                Severity::Low,
                c.install_scripts,
                "runs scripts at install time".to_owned(),
            ));
        }

        if let Some(reason) = meta.deprecated.as_deref().map(str::trim) {
            if !reason.is_empty() {
                findings.push(Finding::new(
                    Code::Deprecated,
                    Severity::Info,
                    c.deprecated,
                    format!("deprecated: {reason}"),
                ));
            }
        }

        if let Some(reason) = meta.yanked.as_deref().map(str::trim) {
            let message = if reason.is_empty() {
                "yanked from the registry".to_owned()
            } else {
                format!("yanked from the registry: {reason}")
            };
            findings.push(Finding::new(
                Code::Yanked,
                Severity::Medium,
                c.yanked,
                message,
            ));
        }
    }
}
