//! Agent identities: tokens, rotation, revocation, suspension, persistence.

use depfw::agents::{AgentError, AuthError, PolicyPreset, Token};
use depfw::store::agents::AgentStore;
use depfw::store::Store;

fn store() -> (Store, AgentStore) {
    let store = Store::temporary().unwrap();
    let agents = AgentStore::new(&store).unwrap();
    (store, agents)
}

#[test]
fn add_returns_a_working_token_that_is_never_stored() {
    let (store, agents) = store();
    let (agent, token) = agents.add("claude-1", PolicyPreset::Strict).unwrap();
    assert_eq!(agent.name, "claude-1");
    assert_eq!(agent.preset, PolicyPreset::Strict);
    assert!(agent.is_active());
    assert!(token.expose_secret().starts_with("dfw_"));
    assert_eq!(format!("{token:?}"), "Token(****)");

    let authed = agents.authenticate(token.expose_secret()).unwrap();
    assert_eq!(authed, agent);

    // Neither the token nor its secret part appears anywhere in the database.
    let secret = &token.expose_secret()[4..];
    for tree_name in store.db().tree_names() {
        let tree = store.db().open_tree(&tree_name).unwrap();
        for item in tree.iter() {
            let (k, v) = item.unwrap();
            for bytes in [k.as_ref(), v.as_ref()] {
                let text = String::from_utf8_lossy(bytes);
                assert!(!text.contains(secret), "token stored in clear");
            }
        }
    }
}

#[test]
fn names_are_validated_and_unique() {
    let (_store, agents) = store();
    for bad in [
        "",
        "Claude",
        "-lead",
        "_lead",
        "a b",
        "a/b",
        "ä",
        &"a".repeat(64),
    ] {
        assert!(
            matches!(
                agents.add(bad, PolicyPreset::Default),
                Err(AgentError::InvalidName(_))
            ),
            "{bad:?} accepted"
        );
    }
    agents.add(&"a".repeat(63), PolicyPreset::Default).unwrap();
    agents.add("ci_bot-2", PolicyPreset::Default).unwrap();
    let (first, _) = agents.add("dup", PolicyPreset::Default).unwrap();
    assert!(matches!(
        agents.add("dup", PolicyPreset::Strict),
        Err(AgentError::Duplicate(_))
    ));
    // The original is untouched by the failed duplicate.
    assert_eq!(agents.get("dup").unwrap(), first);
    assert_eq!(agents.list().unwrap().len(), 3);
}

#[test]
fn bad_and_unknown_tokens_are_refused() {
    let (_store, agents) = store();
    agents.add("a", PolicyPreset::Default).unwrap();
    assert!(matches!(
        agents.authenticate("not-a-token"),
        Err(AuthError::Malformed(_))
    ));
    assert!(matches!(
        agents.authenticate("dfw_short"),
        Err(AuthError::Malformed(_))
    ));
    let stranger = Token::generate().unwrap();
    assert!(matches!(
        agents.authenticate(stranger.expose_secret()),
        Err(AuthError::Unknown)
    ));
}

#[test]
fn rotation_replaces_the_token() {
    let (_store, agents) = store();
    let (_, old) = agents.add("a", PolicyPreset::Default).unwrap();
    let new = agents.rotate("a").unwrap();
    assert_ne!(old, new);
    assert!(matches!(
        agents.authenticate(old.expose_secret()),
        Err(AuthError::Unknown)
    ));
    let agent = agents.authenticate(new.expose_secret()).unwrap();
    assert!(agent.rotated.is_some());
    assert!(matches!(
        agents.rotate("nobody"),
        Err(AgentError::Unknown(_))
    ));
}

#[test]
fn revoked_agents_are_refused_and_stay_listed() {
    let (_store, agents) = store();
    let (_, token) = agents.add("a", PolicyPreset::Default).unwrap();
    let (_, other) = agents.add("b", PolicyPreset::Default).unwrap();
    agents.revoke("a").unwrap();
    assert!(matches!(
        agents.authenticate(token.expose_secret()),
        Err(AuthError::Revoked(name)) if name == "a"
    ));
    assert!(agents.authenticate(other.expose_secret()).is_ok());
    assert!(matches!(agents.revoke("a"), Err(AgentError::Revoked(_))));
    assert!(matches!(agents.rotate("a"), Err(AgentError::Revoked(_))));
    assert!(matches!(
        agents.add("a", PolicyPreset::Default),
        Err(AgentError::Duplicate(_))
    ));
    assert!(matches!(agents.revoke("zz"), Err(AgentError::Unknown(_))));
    let listed = agents.list().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].status(), "revoked");
}

#[test]
fn suspension_blocks_until_resumed() {
    let (_store, agents) = store();
    let (_, token) = agents.add("a", PolicyPreset::Default).unwrap();
    assert!(matches!(
        agents.suspend("a", "  "),
        Err(AgentError::ReasonRequired)
    ));
    assert!(agents.get("a").unwrap().suspended.is_none());
    agents
        .suspend("a", "looping on hallucinated names")
        .unwrap();
    match agents.authenticate(token.expose_secret()) {
        Err(AuthError::Suspended(agent)) => {
            assert_eq!(
                agent.suspended.unwrap().reason,
                "looping on hallucinated names"
            )
        }
        other => panic!("expected suspended, got {other:?}"),
    }
    assert!(matches!(
        agents.suspend("a", "again"),
        Err(AgentError::AlreadySuspended(_))
    ));
    agents.resume("a").unwrap();
    assert!(agents.authenticate(token.expose_secret()).is_ok());
    assert!(matches!(
        agents.resume("a"),
        Err(AgentError::NotSuspended(_))
    ));
    assert!(matches!(
        agents.suspend("ghost", "x"),
        Err(AgentError::Unknown(_))
    ));
}

#[test]
fn agents_and_suspensions_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let token = {
        let store = Store::open(dir.path()).unwrap();
        let agents = AgentStore::new(&store).unwrap();
        let (_, token) = agents.add("a", PolicyPreset::Strict).unwrap();
        agents.suspend("a", "circuit breaker").unwrap();
        token
    };
    let store = Store::open(dir.path()).unwrap();
    let agents = AgentStore::new(&store).unwrap();
    let agent = agents.get("a").unwrap();
    assert_eq!(agent.preset, PolicyPreset::Strict);
    assert_eq!(agent.suspended.unwrap().reason, "circuit breaker");
    assert!(matches!(
        agents.authenticate(token.expose_secret()),
        Err(AuthError::Suspended(_))
    ));
    agents.resume("a").unwrap();
    assert_eq!(
        agents.authenticate(token.expose_secret()).unwrap().name,
        "a"
    );
}

#[test]
fn suspension_reasons_are_one_line() {
    let (_store, agents) = store();
    agents.add("a", PolicyPreset::Default).unwrap();
    assert!(matches!(
        agents.suspend("a", "x\ny"),
        Err(AgentError::BadReason)
    ));
    assert!(agents.get("a").unwrap().suspended.is_none());
}
