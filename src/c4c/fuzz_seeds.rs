//! The fuzz seeds of the C4C response parsers (fuzz/seeds/) reach the parsers' success paths,
//! so fuzzing starts from real shapes, and stay valid as the parsers change.

use serde_json::json;

use super::batch::{self, BatchChange, BatchPart, BatchPartResult};
use super::odata;

fn seed(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fuzz/seeds/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The request shape `fuzz_batch_response` pairs every input with.
fn request() -> Vec<BatchPart> {
    vec![
        BatchPart::Changeset(vec![
            BatchChange::post("EmployeeCollection", json!({"FirstName": "A"})),
            BatchChange::patch(
                "EmployeeCollection('00163E')",
                json!({"LastName": "B"}),
                None,
            ),
        ]),
        BatchPart::Get("EmployeeCollection?$top=1".to_owned()),
        BatchPart::Changeset(vec![BatchChange::delete(
            "EmployeeUserBusinessRoleAssignmentCollection('00163F')",
        )]),
    ]
}

#[test]
fn batch_seeds_parse() {
    let results = batch::parse(
        "multipart/mixed; boundary=batch_resp",
        &seed("batch_response/ok.txt"),
        &request(),
    )
    .unwrap();
    assert!(matches!(&results[0], BatchPartResult::Changeset(c) if c.iter().all(Result::is_ok)));
    let failed = batch::parse(
        "multipart/mixed; boundary=batch_resp",
        &seed("batch_response/failed_changeset.txt"),
        &request(),
    )
    .unwrap();
    assert!(matches!(&failed[0], BatchPartResult::Changeset(c) if c.iter().all(Result::is_err)));
}

#[test]
fn odata_seeds_parse() {
    odata::parse_collection(&seed("odata_response/collection.json")).unwrap();
    odata::parse_entity(&seed("odata_response/entity.json")).unwrap();
    let error =
        super::error::error_from_response(400, false, None, &seed("odata_response/error.json"));
    assert!(error.to_string().contains("Emial"), "{error}");
    let error =
        super::error::error_from_response(403, false, None, &seed("odata_response/error.xml"));
    assert!(
        error.to_string().contains("Inconsistent Authorization"),
        "{error}"
    );
}
