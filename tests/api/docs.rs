//! Doc checks: the operator documentation cannot drift from the code.
//! - docs/configuration.md is exactly what `config-reference` generates;
//! - every ```toml block in README.md and docs/ loads as configuration (unknown keys are errors),
//!   or as a mapping rules file when fenced ```toml mapping;
//! - every `c4c-scim-bridge …` command line in a shell block parses with the real CLI;
//! - every `C4C_SCIM_BRIDGE__SECTION__KEY` variable named anywhere names a real key.
//!
//! Blocks fenced with another language (```text, ```json …) are not checked.

use std::path::{Path, PathBuf};

use c4c_scim_bridge::cli::Cli;
use c4c_scim_bridge::config::{Config, ConfigError};
use clap::Parser;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents() -> Vec<(PathBuf, String)> {
    let mut paths = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// Fenced code blocks: (info string, body, line number of the fence).
fn blocks(text: &str) -> Vec<(String, String, usize)> {
    let mut found = Vec::new();
    let mut current: Option<(String, String, usize)> = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match current.take() {
                Some(block) => found.push(block),
                None => current = Some((info.trim().to_owned(), String::new(), number + 1)),
            }
        } else if let Some((_, body, _)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    found
}

fn short(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn configuration_reference_is_generated_from_the_code() {
    let on_disk = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    let generated = c4c_scim_bridge::config_reference::markdown();
    assert!(
        on_disk == generated,
        "docs/configuration.md is stale: run `cargo run -- config-reference > docs/configuration.md`"
    );
}

/// Fragments may show one section alone: the parts a complete file needs are filled in (a C4C
/// fragment gets a base URL and basic auth when it has none), nothing else.
fn complete(mut doc: toml::Table) -> toml::Table {
    if let Some(toml::Value::Table(c4c)) = doc.get_mut("c4c") {
        c4c.entry("base_url").or_insert(toml::Value::String(
            "https://my000000.crm.ondemand.com/sap/c4c/odata/v1/c4codataapi/".into(),
        ));
        c4c.entry("auth").or_insert_with(|| {
            let mut auth = toml::Table::new();
            auth.insert("mode".into(), "basic".into());
            auth.insert("user".into(), "_TECH".into());
            auth.insert("password".into(), "x".into());
            toml::Value::Table(auth)
        });
    }
    doc
}

#[test]
fn every_toml_block_in_the_docs_is_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (path, text) in documents() {
        for (info, body, line) in blocks(&text) {
            let mut words = info.split_whitespace();
            if words.next() != Some("toml") {
                continue;
            }
            let place = format!("{}:{line}", short(&path));
            let doc: toml::Table =
                toml::from_str(&body).unwrap_or_else(|e| panic!("{place}: not TOML: {e}\n{body}"));
            if words.next() == Some("mapping") {
                let rules: c4c_scim_bridge::mapping::MappingConfig = toml::from_str(&body)
                    .unwrap_or_else(|e| panic!("{place}: not a mapping file: {e}"));
                if let Err(problems) = c4c_scim_bridge::mapping::Mapper::new(rules, None) {
                    panic!("{place}: mapping rules refused: {problems:?}");
                }
            } else {
                let file = dir.path().join(format!("block{checked}.toml"));
                std::fs::write(&file, toml::to_string(&complete(doc)).unwrap()).unwrap();
                // Structure and values are checked; files named in examples need not exist here.
                if let Err(error) = Config::load(Some(&file)) {
                    let missing_file = matches!(error, ConfigError::SecretFile { .. })
                        || error.to_string().contains("cannot read");
                    assert!(
                        missing_file,
                        "{place}: refused by the loader: {error}\n{body}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} TOML blocks found");
}

/// Splits a shell line into words (quotes honoured), dropping `VAR=value` prefixes and
/// anything after a pipe, redirection or `&&`.
fn command_words(line: &str) -> Option<Vec<String>> {
    let line = line.trim().trim_start_matches("$ ");
    let mut words = shlex::split(line)?;
    while words
        .first()
        .is_some_and(|w| w.contains('=') && !w.starts_with('-'))
    {
        words.remove(0);
    }
    let start = if words.first().map(String::as_str) == Some("cargo") {
        // `cargo run [--release] -- ARGS`
        let separator = words.iter().position(|w| w == "--")?;
        if !words.iter().take(separator).any(|w| w == "run") {
            return None;
        }
        separator + 1
    } else if words
        .first()
        .is_some_and(|w| w == "c4c-scim-bridge" || w.ends_with("/c4c-scim-bridge"))
    {
        1
    } else {
        return None;
    };
    let end = words
        .iter()
        .position(|w| ["|", ">", ">>", "<", "&&", "||", ";", "2>&1"].contains(&w.as_str()))
        .unwrap_or(words.len());
    let mut argv = vec!["c4c-scim-bridge".to_owned()];
    argv.extend(words[start..end.max(start)].iter().cloned());
    Some(argv)
}

#[test]
fn every_command_in_the_docs_parses() {
    let mut checked = 0;
    for (path, text) in documents() {
        for (info, body, line) in blocks(&text) {
            if !["sh", "bash", "console", "shell"].contains(&info.as_str()) {
                continue;
            }
            // Lines continued with a backslash are joined first.
            let joined = body.replace("\\\n", " ");
            for command in joined.lines() {
                let Some(argv) = command_words(command) else {
                    continue;
                };
                if argv.len() == 1 {
                    continue; // a bare `cargo run -- ` prefix never appears alone in practice
                }
                if let Err(error) = Cli::try_parse_from(&argv) {
                    // --help and --version print and "fail" in clap's terms; they are fine.
                    use clap::error::ErrorKind;
                    assert!(
                        matches!(
                            error.kind(),
                            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
                        ),
                        "{}:{line}: `{command}` does not parse: {error}",
                        short(&path)
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "only {checked} commands found");
}

#[test]
fn every_environment_variable_in_the_docs_names_a_real_key() {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
    let reference = c4c_scim_bridge::config_reference::markdown();
    let pattern = "C4C_SCIM_BRIDGE__";
    let mut checked = 0;
    let mut sources = documents();
    for extra in ["deploy/docker-compose.yml", "deploy/config.example.toml"] {
        let path = repo().join(extra);
        let text = std::fs::read_to_string(&path).unwrap();
        sources.push((path, text));
    }
    for entry in std::fs::read_dir(repo().join("deploy/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        sources.push((path, text));
    }
    for (path, text) in sources {
        for (offset, _) in text.match_indices(pattern) {
            let name: String = text[offset + pattern.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let parts: Vec<String> = name.split("__").map(str::to_ascii_lowercase).collect();
            // The generic forms `<SECTION>__<KEY>` and `SECTION__KEY` are documentation.
            if parts
                .iter()
                .any(|p| p.is_empty() || p == "section" || p == "key")
            {
                continue;
            }
            assert!(
                key_exists(&schema, &parts),
                "{}: {pattern}{name} names no configuration key",
                short(&path)
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} environment variables found");
    assert!(reference.contains("C4C_SCIM_BRIDGE__"));
}

fn key_exists(schema: &serde_json::Value, parts: &[String]) -> bool {
    let defs = schema["$defs"].clone();
    let mut current = schema.clone();
    for part in parts {
        current = resolve(&defs, &current);
        let candidates: Vec<serde_json::Value> = match current.get("oneOf") {
            Some(serde_json::Value::Array(variants)) => {
                variants.iter().map(|v| resolve(&defs, v)).collect()
            }
            _ => vec![current.clone()],
        };
        match candidates
            .iter()
            .find_map(|c| c.get("properties").and_then(|p| p.get(part.as_str())))
        {
            Some(next) => current = next.clone(),
            None => return false,
        }
    }
    true
}

fn resolve(defs: &serde_json::Value, schema: &serde_json::Value) -> serde_json::Value {
    if let Some(name) = schema
        .get("$ref")
        .and_then(|r| r.as_str())
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        return resolve(defs, &defs[name]);
    }
    for key in ["allOf", "anyOf"] {
        if let Some(items) = schema.get(key).and_then(|v| v.as_array()) {
            let non_null: Vec<&serde_json::Value> = items
                .iter()
                .filter(|i| i.get("type").and_then(|t| t.as_str()) != Some("null"))
                .collect();
            if non_null.len() == 1 {
                return resolve(defs, non_null[0]);
            }
        }
    }
    schema.clone()
}
