//! For tests of the PostgreSQL backend: a fresh database per test on the cluster
//! `.ci/postgres.sh start` runs (`DEPFW_TEST_POSTGRES_URL`).
//!
//! Without that variable a test is skipped with a message, or fails under CI (`CI` set to
//! anything but empty, `0`, `false`, `no` or `off`): a CI machine without PostgreSQL must
//! never look green.

use tokio_postgres::NoTls;

use crate::config::DatabaseUrl;

/// The variable naming the test cluster's database (with credentials).
pub const URL_VAR: &str = "DEPFW_TEST_POSTGRES_URL";

/// Whether this is a CI run (the rule of `integration/require.rs`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off"
        )
    })
}

/// A new, empty database on the test cluster, or `None` (with a message on stderr) when
/// no cluster is configured outside CI. Panics under CI without one.
pub fn fresh_database(test: &str) -> Option<DatabaseUrl> {
    let Ok(base) = std::env::var(URL_VAR) else {
        assert!(
            !in_ci(),
            "{test}: {URL_VAR} is not set; CI must start PostgreSQL (.ci/postgres.sh start)"
        );
        eprintln!("{test}: skipped, {URL_VAR} is not set (eval \"$(bash .ci/postgres.sh start)\")");
        return None;
    };
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes for a database name");
    let name = format!("depfw_t_{}", hex::encode(bytes));
    // On a thread of its own, so that a test may call this from inside a runtime.
    let (create, test_name, sql) = (
        base.clone(),
        test.to_owned(),
        format!("CREATE DATABASE {name}"),
    );
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the test database");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&create, NoTls)
                .await
                .unwrap_or_else(|e| panic!("{test_name}: cannot reach the test cluster: {e}"));
            let task = tokio::spawn(connection);
            client
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{test_name}: cannot create a test database: {e}"));
            drop(client);
            let _ = task.await;
        });
    })
    .join()
    .unwrap_or_else(|_| panic!("{test}: the test database was not created"));
    let mut url = url::Url::parse(&base).expect("DEPFW_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(DatabaseUrl::parse(url.as_str()).expect("a PostgreSQL URL"))
}
