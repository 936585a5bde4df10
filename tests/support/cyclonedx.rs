//! The official CycloneDX 1.6 JSON schema (tests/fixtures/cyclonedx, from
//! CycloneDX/specification), for the tests of `depfw audit --format cyclonedx` and
//! `depfw log sbom`. The schema's `$ref`s to `spdx.schema.json` and `jsf-0.82.schema.json`
//! are served from the vendored copies: nothing is fetched.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

const BASE: &str = "http://cyclonedx.org/schema/";
const FILES: [&str; 3] = [
    "bom-1.6.schema.json",
    "spdx.schema.json",
    "jsf-0.82.schema.json",
];

struct Vendored(HashMap<String, Value>);

impl jsonschema::Retrieve for Vendored {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .get(uri.as_str())
            .cloned()
            .ok_or_else(|| format!("not vendored: {uri}").into())
    }
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schemas: HashMap<String, Value> = FILES
            .iter()
            .map(|file| {
                let text = std::fs::read_to_string(super::fixture("cyclonedx").join(file)).unwrap();
                (
                    format!("{BASE}{file}"),
                    serde_json::from_str(&text).unwrap(),
                )
            })
            .collect();
        let bom = schemas[&format!("{BASE}{}", FILES[0])].clone();
        jsonschema::options()
            .should_validate_formats(true)
            .with_retriever(Vendored(schemas))
            .build(&bom)
            .unwrap()
    })
}

/// Panics with every schema violation of `doc`, located by JSON pointer.
pub fn assert_valid(doc: &Value) {
    let errors: Vec<String> = validator()
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not a valid CycloneDX 1.6 document:\n{}\n{doc:#}",
        errors.join("\n")
    );
}
