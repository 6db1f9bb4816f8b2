//! Discovery endpoints: behind the bearer token, generated from the schema definitions.

use c4c_scim_bridge::auth::create_token;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::harness::{Backend, TestApp};

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(app.url(&format!("/scim/v2{path}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/scim+json");
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn discovery_documents() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = create_token(&app.store, "t", None).await.unwrap();
    let token = token.token.expose_secret();

    let (status, config) = get(&app, token, "/ServiceProviderConfig").await;
    assert_eq!(status, 200);
    assert_eq!(
        config["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );
    // Honest flags: what /Users implements is on, nothing else (bulk, sort) is advertised.
    assert_eq!(config["patch"]["supported"], true);
    assert_eq!(config["etag"]["supported"], true);
    assert_eq!(config["filter"]["supported"], true);
    assert_eq!(config["filter"]["maxResults"], 1000);
    assert_eq!(config["bulk"]["supported"], false);
    assert_eq!(config["sort"]["supported"], false);

    let (status, schemas) = get(&app, token, "/Schemas").await;
    assert_eq!(status, 200);
    assert_eq!(schemas["totalResults"], 3);
    let location = schemas["Resources"][0]["meta"]["location"]
        .as_str()
        .unwrap();
    assert!(
        location.starts_with(&format!("http://{}/scim/v2/Schemas/", app.addr)),
        "{location}"
    );

    let (status, user) = get(
        &app,
        token,
        "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(user["name"], "User");
    let (status, types) = get(&app, token, "/ResourceTypes").await;
    assert_eq!(status, 200);
    assert_eq!(types["totalResults"], 2);
    let (status, group) = get(&app, token, "/ResourceTypes/group").await;
    assert_eq!(status, 200);
    assert_eq!(group["endpoint"], "/Groups");
    let (status, missing) = get(&app, token, "/Schemas/urn:nope").await;
    assert_eq!(status, 404);
    assert_eq!(missing["status"], "404");
}
