//! The byte bounds of `depfw serve`'s in-memory caches as configured
//! (`upstream.metadata-cache-bytes`, `parse-cache-bytes`, `render-cache-bytes`): what does
//! not fit is served, not kept, and the answers are the same.

use axum::http::StatusCode;

use crate::router::{body, get, setup};
use crate::support::registry::TestCheck;

#[tokio::test]
async fn a_body_over_the_metadata_bound_is_served_but_not_kept() {
    let bounded = setup(TestCheck::default(), "metadata-cache-bytes = 64").await;
    let roomy = setup(TestCheck::default(), "").await;
    for s in [&bounded, &roomy] {
        for _ in 0..2 {
            let resp = get(&s.state, "/npm/ms").await;
            assert_eq!(resp.status(), StatusCode::OK);
        }
    }
    assert_eq!(bounded.fixture.hits("/ms"), 2, "fetched again: not kept");
    assert_eq!(roomy.fixture.hits("/ms"), 1, "kept under the default bound");
}

#[tokio::test]
async fn renderings_over_the_render_bound_are_served_but_not_kept() {
    let check = TestCheck::default();
    let s = setup(check.clone(), "render-cache-bytes = 64").await;
    let first = body(get(&s.state, "/npm/ms").await).await;
    let evaluated = check.version_evaluations();
    assert!(evaluated > 0);
    let second = body(get(&s.state, "/npm/ms").await).await;
    assert_eq!(first, second);
    assert!(
        check.version_evaluations() > evaluated,
        "evaluated and rendered again: neither verdicts nor rendering were kept"
    );
    assert_eq!(s.fixture.hits("/ms"), 1, "the upstream body was kept");

    let check = TestCheck::default();
    let roomy = setup(check.clone(), "").await;
    let cold = body(get(&roomy.state, "/npm/ms").await).await;
    let evaluated = check.version_evaluations();
    assert_eq!(body(get(&roomy.state, "/npm/ms").await).await, cold);
    assert_eq!(check.version_evaluations(), evaluated, "a warm hit");
    assert_eq!(cold, first, "the same answer either way");
}

#[tokio::test]
async fn documents_over_the_parse_bound_are_parsed_again_with_the_same_answer() {
    let s = setup(TestCheck::default(), "parse-cache-bytes = 64").await;
    let tarball = "/npm/ms/-/ms-2.1.3.tgz";
    for _ in 0..2 {
        assert_eq!(get(&s.state, "/npm/ms").await.status(), StatusCode::OK);
        assert_eq!(get(&s.state, tarball).await.status(), StatusCode::OK);
    }
    assert_eq!(s.fixture.hits("/ms"), 1);
}
