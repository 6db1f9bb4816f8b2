use c4c_scim_bridge::sim::{DEFAULT_PASSWORD, DEFAULT_USER, SimConfig, SimHandle, Simulator};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;

pub struct Tenant {
    pub sim: SimHandle,
    pub http: Client,
}

pub async fn start(config: SimConfig) -> Tenant {
    let sim = Simulator::start(config).await.expect("simulator starts");
    let http = Client::builder().cookie_store(true).build().unwrap();
    Tenant { sim, http }
}

pub async fn start_with(n: usize) -> Tenant {
    start(SimConfig {
        generated_employees: n,
        ..SimConfig::default()
    })
    .await
}

impl Tenant {
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.sim.service_url(), path)
    }
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.http
            .get(self.url(path))
            .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
    }
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self
            .get(path)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    /// Fetches a CSRF token (the client's cookie store keeps the session cookie).
    pub async fn csrf(&self) -> String {
        let r = self
            .get("")
            .header("x-csrf-token", "Fetch")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.headers()
            .get("x-csrf-token")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }
    pub fn write(&self, method: reqwest::Method, path: &str, token: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
            .header("x-csrf-token", token)
            .header("accept", "application/json")
    }
    pub async fn create(&self, body: Value) -> Value {
        let token = self.csrf().await;
        let r = self
            .write(reqwest::Method::POST, "EmployeeCollection", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        r.json::<Value>().await.unwrap()["d"].clone()
    }
}

pub async fn error_message(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("JSON error body");
    assert_eq!(v["error"]["code"], "ERROR", "{v}");
    assert_eq!(v["error"]["message"]["lang"], "en", "{v}");
    (
        status,
        v["error"]["message"]["value"].as_str().unwrap().to_owned(),
    )
}
