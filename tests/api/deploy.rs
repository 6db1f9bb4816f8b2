//! The deploy manifests agree with the code: ports, probes, config keys, env names, secrets.

use std::path::{Path, PathBuf};
use std::process::Command;

use c4c_scim_bridge::config::Config;
use serde_yaml_ng::Value;

use crate::harness::{Backend, TestApp, binary};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn kubernetes_documents() -> Vec<Value> {
    let mut documents = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(deploy_dir().join("kubernetes"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert!(value["apiVersion"].is_string(), "{}", path.display());
            assert!(value["metadata"]["name"].is_string(), "{}", path.display());
            documents.push(value);
        }
    }
    documents
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|document| document["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} manifest"))
}

/// An env name is a real configuration key when `check` does not call it unknown.
fn assert_env_name_is_a_config_key(name: &str, value: &str) {
    let output = Command::new(binary())
        .arg("check")
        .env(name, value)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("unknown field"), "{name}: {stderr}");
}

#[tokio::test]
async fn kubernetes_manifests_agree_with_the_code() {
    let documents = kubernetes_documents();
    for kind in [
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ] {
        of_kind(&documents, kind);
    }
    let deployment = of_kind(&documents, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let port = container["ports"][0]["containerPort"].as_u64().unwrap();

    // The ConfigMap's TOML is a valid configuration listening on the container port.
    let config_toml = of_kind(&documents, "ConfigMap")["data"]["config.toml"]
        .as_str()
        .unwrap();
    let config: Config = toml::from_str(config_toml).unwrap();
    assert_eq!(u64::from(config.server.listen.port()), port);
    assert_eq!(
        of_kind(&documents, "NetworkPolicy")["spec"]["ingress"][0]["ports"][0]["port"].as_u64(),
        Some(port)
    );

    // Every secret file the configuration reads is a key of the Secret, mounted where it is read.
    let secret_mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|mount| mount["name"] == "secrets")
        .unwrap()["mountPath"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_keys = of_kind(&documents, "Secret")["stringData"]
        .as_mapping()
        .unwrap()
        .clone();
    let c4c_password = match &config.c4c.as_ref().unwrap().auth {
        c4c_scim_bridge::c4c::config::AuthConfig::Basic { password_file, .. } => {
            password_file.clone().unwrap()
        }
        other => panic!("{other:?}"),
    };
    for file in [config.store.url_file.clone().unwrap(), c4c_password] {
        assert_eq!(
            file.parent().unwrap(),
            Path::new(&secret_mount),
            "{}",
            file.display()
        );
        let key = file.file_name().unwrap().to_str().unwrap();
        assert!(secret_keys.contains_key(key), "Secret lacks {key}");
    }

    for env in container["env"].as_sequence().unwrap() {
        assert_env_name_is_a_config_key(
            env["name"].as_str().unwrap(),
            env["value"].as_str().unwrap(),
        );
    }

    // The probes answer on a real server.
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        let status = app.client.get(app.url(path)).send().await.unwrap().status();
        assert_eq!(status, 200, "{probe} {path}");
    }
}

#[test]
fn compose_and_dockerfile_agree_with_the_code() {
    let compose: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(deploy_dir().join("docker-compose.yml")).unwrap(),
    )
    .unwrap();
    let bridge = &compose["services"]["bridge"];
    assert_eq!(bridge["ports"][0], "8080:8080");
    for (name, value) in bridge["environment"].as_mapping().unwrap() {
        assert_env_name_is_a_config_key(name.as_str().unwrap(), value.as_str().unwrap());
    }
    let compose_config: Config =
        toml::from_str(&std::fs::read_to_string(deploy_dir().join("compose-config.toml")).unwrap())
            .unwrap();
    assert_eq!(compose_config.server.listen.port(), 8080);

    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("EXPOSE 8080"));
    assert!(dockerfile.contains("http://127.0.0.1:8080/healthz"));
    assert!(dockerfile.contains("USER 10001"));
    assert!(dockerfile.contains("C4C_SCIM_BRIDGE__SERVER__LISTEN=0.0.0.0:8080"));
}
