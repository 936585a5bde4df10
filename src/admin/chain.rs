//! `depfw log verify`'s check of the decision log, shared by the command (on a store it
//! opens) and the admin API's `POST /admin/api/log/verify` (on the running server's
//! store), so that both report the same problem with the same words.

use std::path::Path;

use crate::store::decisions::{ChainProblem, ChainStatus};
use crate::store::repo::DecisionRepo;
use crate::store::signing::{LogKey, PublicKey, KEY_FILE};

/// Walks the chain and its signatures: against `public_key` (a key kept off this host) if
/// given, else against `data_dir`'s own signing key if it has one. `damaged` are the seqs
/// of records whose bytes fail sled's checksums in the files (found before sled opened
/// them; none for a store already open); `checkpoints` the text of a checkpoint file.
/// Returns the status and what was checked beyond the chain, one line each.
pub(crate) fn verify(
    log: &dyn DecisionRepo,
    data_dir: Option<&Path>,
    public_key: Option<PublicKey>,
    checkpoints: Option<&str>,
    damaged: &[u64],
) -> anyhow::Result<(ChainStatus, String)> {
    let key_file = data_dir.map(|dir| dir.join(KEY_FILE));
    let (key, whose) = match (public_key, key_file) {
        (Some(key), _) => (Some(key), "the given key"),
        // The data dir's own key still catches a chain re-signed with another key by
        // someone who could not replace the key file as well.
        (None, Some(file)) if file.exists() => (
            Some(LogKey::load(&file)?.public()),
            "this data directory's key (pass --public-key for a key kept elsewhere)",
        ),
        (None, _) => (None, ""),
    };
    let status = log.verify_signed(key.as_ref())?;
    let ChainStatus::Intact {
        records, unsigned, ..
    } = status
    else {
        return Ok((status, String::new()));
    };
    // sled recovers a page whose bytes fail its checksums as a torn write: the log silently
    // ends before it. A damaged copy of a later record in the files gives that away.
    if let Some(&seq) = damaged.iter().find(|&&seq| seq > records) {
        let problem = ChainProblem::Damaged;
        return Ok((ChainStatus::Broken { seq, problem }, String::new()));
    }
    let mut summary = String::new();
    if let Some(key) = &key {
        if records > unsigned {
            summary.push_str(&format!(
                "\nrecords {}..{records} signed by {} ({whose})",
                unsigned + 1,
                key.encode()
            ));
        }
    }
    if let Some(text) = checkpoints {
        match log.verify_checkpoints(text, key.as_ref())? {
            Ok(n) => summary.push_str(&format!("\n{n} checkpoints match the log")),
            Err(broken) => return Ok((broken, String::new())),
        }
    }
    Ok((status, summary))
}
