//! Which data directory a command uses when `--data-dir` does not say, and the line on
//! stderr that names the store a command opened.
//!
//! `depfw agents add` run in another folder used to make a new `./.depfw` and print a
//! token the running server did not know. The default is now one absolute directory,
//! whatever the working directory, found in this order:
//!
//! 1. `--data-dir` / `$DEPFW_DATA_DIR`;
//! 2. `server.data-dir` in the config file (a relative path there is read from the config
//!    file's own directory, see [`crate::config::Config::load`]);
//! 3. `$STATE_DIRECTORY` (systemd's `StateDirectory=`; the first of a `:`-separated list);
//! 4. `$XDG_STATE_HOME/depfw`;
//! 5. `$HOME/.local/state/depfw`.
//!
//! Nothing of these (no `HOME`): an error for a command that needs a store. A store left
//! by an older depfw in `./.depfw` is not used silently: the command warns, naming both
//! directories and `--data-dir .depfw`.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// The data directory of depfw before this default existed, relative to the working
/// directory.
pub(crate) const LEGACY: &str = ".depfw";

/// Where the data directory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `--data-dir` or `$DEPFW_DATA_DIR`.
    Flag,
    /// `server.data-dir` in the config file.
    ConfigFile,
    StateDirectory,
    XdgStateHome,
    Home,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "--data-dir",
            Source::ConfigFile => "server.data-dir",
            Source::StateDirectory => "$STATE_DIRECTORY",
            Source::XdgStateHome => "default, $XDG_STATE_HOME/depfw",
            Source::Home => "default, ~/.local/state/depfw",
        })
    }
}

/// The data directory: `flag` (`--data-dir`), else `configured` (`server.data-dir`,
/// already read against the config file's directory), else the first of the environment
/// variables `env` yields (`std::env::var_os`; tests pass their own). Relative paths
/// (a relative flag, `$STATE_DIRECTORY`) are made absolute against the working directory;
/// `XDG_STATE_HOME` counts only when absolute, as the XDG spec says.
pub(crate) fn resolve(
    flag: Option<&Path>,
    configured: Option<&Path>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> anyhow::Result<(PathBuf, Source)> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let (dir, source) = if let Some(dir) = flag {
        (dir.to_owned(), Source::Flag)
    } else if let Some(dir) = configured {
        (dir.to_owned(), Source::ConfigFile)
    } else if let Some(dirs) = set("STATE_DIRECTORY") {
        let first = std::env::split_paths(&dirs).next().unwrap_or_default();
        (first, Source::StateDirectory)
    } else if let Some(xdg) = set("XDG_STATE_HOME").filter(|v| Path::new(v).is_absolute()) {
        (PathBuf::from(xdg).join("depfw"), Source::XdgStateHome)
    } else if let Some(home) = set("HOME").filter(|v| Path::new(v).is_absolute()) {
        (PathBuf::from(home).join(".local/state/depfw"), Source::Home)
    } else {
        anyhow::bail!(
            "no data directory: pass --data-dir DIR (or set DEPFW_DATA_DIR, or \
             `server.data-dir` in the config file); the default, $XDG_STATE_HOME/depfw or \
             ~/.local/state/depfw, needs HOME"
        );
    };
    anyhow::ensure!(
        !dir.as_os_str().is_empty(),
        "the data directory ({source}) is empty"
    );
    Ok((std::path::absolute(&dir)?, source))
}

/// What a command that opens a store prints on stderr first: which store (never a
/// database password), and a warning when an older depfw's `./.depfw` store is left
/// behind in the working directory. `backend`: the command uses the configured backend
/// (PostgreSQL when `store.url` is set), not only the data directory's sled store.
pub(crate) fn announce(config: &Config, source: Source, backend: bool, json_logs: bool) {
    let url = config.store.url.as_ref().filter(|_| backend);
    let line = match url {
        Some(url) => format!("PostgreSQL at {}", url.redacted()),
        None => format!("sled at {} ({source})", config.server.data_dir.display()),
    };
    let legacy = legacy_store(&config.server.data_dir, url.is_none());
    if json_logs {
        // A log shipper reads one JSON object a line on stderr.
        tracing::info!("store: {line}");
        if let Some(legacy) = &legacy {
            tracing::warn!("{legacy}");
        }
    } else {
        // After what was logged before it (`serve` writes its log in batches).
        crate::observe::logging::flush();
        eprintln!("depfw: store: {line}");
        if let Some(legacy) = &legacy {
            eprintln!("depfw: warning: {legacy}");
        }
    }
}

/// A `./.depfw/store` an older depfw made in the working directory that is not the store
/// in use: what to do about it.
fn legacy_store(in_use: &Path, sled: bool) -> Option<String> {
    let legacy = std::path::absolute(LEGACY).ok()?;
    if !legacy.join("store").is_dir() {
        return None;
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if sled && same(&legacy, in_use) {
        return None;
    }
    let used = if sled {
        format!("the store in {}", in_use.display())
    } else {
        "the PostgreSQL store".to_owned()
    };
    Some(format!(
        "{} holds a store from an older depfw, which used ./{LEGACY} as its default; this \
         command uses {used}. To keep using the old one, pass --data-dir {LEGACY} (or set \
         `server.data-dir`), or move it to {}",
        legacy.display(),
        in_use.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_flag_then_the_config_then_systemd_then_xdg_then_home() {
        let all = [
            ("STATE_DIRECTORY", "/var/lib/depfw:/var/lib/other"),
            ("XDG_STATE_HOME", "/x/state"),
            ("HOME", "/home/u"),
        ];
        fn resolve(
            flag: Option<&str>,
            configured: Option<&str>,
            vars: &[(&str, &str)],
        ) -> (PathBuf, Source) {
            super::resolve(flag.map(Path::new), configured.map(Path::new), &env(vars)).unwrap()
        }
        let p = PathBuf::from;
        assert_eq!(
            resolve(Some("/f"), Some("/c"), &all),
            (p("/f"), Source::Flag)
        );
        assert_eq!(
            resolve(None, Some("/c"), &all),
            (p("/c"), Source::ConfigFile)
        );
        assert_eq!(
            resolve(None, None, &all),
            (p("/var/lib/depfw"), Source::StateDirectory)
        );
        assert_eq!(
            resolve(None, None, &all[1..]),
            (p("/x/state/depfw"), Source::XdgStateHome)
        );
        assert_eq!(
            resolve(None, None, &all[2..]),
            (p("/home/u/.local/state/depfw"), Source::Home)
        );
        // Empty and relative XDG_STATE_HOME values are ignored, as the spec says.
        for xdg in ["", "rel/state"] {
            assert_eq!(
                resolve(None, None, &[("XDG_STATE_HOME", xdg), ("HOME", "/home/u")]),
                (p("/home/u/.local/state/depfw"), Source::Home)
            );
        }
        // A relative flag is the working directory's, made absolute.
        let (dir, _) = resolve(Some(".depfw"), None, &[]);
        assert!(dir.is_absolute() && dir.ends_with(".depfw"), "{dir:?}");
    }

    #[test]
    fn without_home_it_says_how_to_name_one() {
        let err = resolve(None, None, &env(&[("HOME", "")])).unwrap_err();
        assert!(err.to_string().contains("--data-dir"), "{err}");
    }
}
