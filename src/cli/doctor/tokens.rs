//! Finding agent tokens written into files, for `depfw doctor`: a token in a committed
//! `.npmrc` or lockfile is a token anyone with the repository can use. The findings say
//! where (file and line) and what kind, never the token.

use super::{Code, Report};
use crate::agents::token::TOKEN_PREFIX;

/// Length of a token after its `dfw_` prefix (unpadded URL-safe base64 of 32 bytes).
const SECRET_CHARS: usize = 43;
/// The placeholder `depfw init --token-in-path` prints; not a secret.
const PLACEHOLDER: &str = crate::cli::init::TOKEN_PLACEHOLDER;

/// Reports each line of `text` that carries a depfw token: the `dfw_…` shape anywhere, or
/// a `/a/<token>/` path under depfw's URL.
pub(crate) fn scan(rel: &str, text: &str, report: &mut Report) {
    let mount = format!("{}/a/", report.base());
    let mut hits = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let in_path = line.match_indices(&mount).any(|(at, m)| {
            let segment = line[at + m.len()..].split('/').next().unwrap_or_default();
            !segment.is_empty() && segment != PLACEHOLDER
        });
        if in_path {
            hits.push((i + 1, "a token in a depfw `/a/****/` URL"));
        } else if has_token_shape(line) {
            hits.push((i + 1, "a depfw agent token (dfw_****)"));
        }
    }
    // A lockfile made through a `/a/<token>/` mirror has it on every line: say it once,
    // with the count.
    if let Some((line, what)) = hits.first() {
        let more = match hits.len() {
            1 => String::new(),
            n => format!(" (and {} more lines)", n - 1),
        };
        report.finding(
            Code::TokenInFile,
            rel,
            format!(
                "line {line}: {what}{more}: rotate it (`depfw agents rotate`) and read it \
                 from ${} instead",
                crate::agents::TOKEN_ENV
            ),
        );
    }
}

fn has_token_shape(line: &str) -> bool {
    line.match_indices(TOKEN_PREFIX).any(|(at, p)| {
        let secret = line[at + p.len()..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .count();
        let boundary = at == 0
            || !line.as_bytes()[at - 1].is_ascii_alphanumeric() && line.as_bytes()[at - 1] != b'_';
        boundary && secret == SECRET_CHARS
    })
}

/// Whether an auth-token value in a config is a literal secret rather than a reference to
/// the environment (`${DEPFW_TOKEN}`, `$DEPFW_TOKEN`).
pub(crate) fn is_literal_secret(value: &str) -> bool {
    let value = value.trim().trim_matches('"').trim_matches('\'');
    !value.is_empty() && !value.starts_with('$')
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An empty report against depfw at the default public URL.
    pub(crate) fn report() -> Report {
        Report {
            dir: ".".into(),
            depfw: "http://127.0.0.1:7878".into(),
            cooldown_hours: None,
            checked: vec![],
            ok: vec![],
            findings: vec![],
        }
    }

    const TOKEN: &str = "dfw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn tokens_are_found_and_never_echoed() {
        let mut r = report();
        let lock = format!(
            "{{\n\"resolved\": \"http://127.0.0.1:7878/a/{TOKEN}/npm/x/-/x-1.tgz\",\n\
             \"resolved\": \"http://127.0.0.1:7878/a/{TOKEN}/npm/y/-/y-1.tgz\"\n}}"
        );
        scan("package-lock.json", &lock, &mut r);
        scan(".npmrc", &format!("//h/:_authToken={TOKEN}\n"), &mut r);
        assert_eq!(r.findings.len(), 2, "{:?}", r.findings);
        assert!(r.findings[0]
            .message
            .starts_with("line 2: a token in a depfw `/a/****/` URL (and 1 more lines)"));
        assert!(r.findings[1].message.contains("dfw_****"));
        assert!(!format!("{:?}", r.findings).contains(&TOKEN[4..]));
    }

    #[test]
    fn placeholders_and_other_urls_are_not_tokens() {
        let mut r = report();
        scan(
            "a",
            "registry=http://127.0.0.1:7878/a/AGENT_TOKEN/npm/\n",
            &mut r,
        );
        scan(
            "b",
            "https://github.com/a/b/ x_dfw_AAAA dfw_short\n",
            &mut r,
        );
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert!(is_literal_secret("npm_abc"));
        assert!(!is_literal_secret("${DEPFW_TOKEN}"));
        assert!(!is_literal_secret("\"$DEPFW_TOKEN\""));
    }
}
