//! Unit tests of `env`: values, defaults and errors through a map instead of the process
//! environment.

use std::collections::HashMap;

use super::*;

struct Map(HashMap<&'static str, &'static str>);

impl Strings for Map {
    fn get(&self, key: &str) -> Result<Option<String>, EnvError> {
        Ok(self.0.get(key).map(|v| (*v).to_owned()))
    }
}

#[test]
fn unset_variables_are_none() {
    assert_eq!(parse(&Map(HashMap::new())), Ok(EnvConfig::default()));
}

#[test]
fn endpoint_and_model_are_read() {
    let env = Map(HashMap::from([
        (ENV_ENDPOINT, "http://gateway:80/v1"),
        (ENV_MODEL_NAME, "Qwen/Qwen3-0.6B"),
    ]));
    assert_eq!(
        parse(&env),
        Ok(EnvConfig {
            endpoint: Some("http://gateway:80/v1".to_owned()),
            model: Some("Qwen/Qwen3-0.6B".to_owned()),
        })
    );
}

#[test]
fn a_bad_endpoint_is_named() {
    let env = Map(HashMap::from([(ENV_ENDPOINT, "localhost:8000")]));
    let error = parse(&env).unwrap_err();
    assert!(
        error.to_string().starts_with("ENDPOINT=\"localhost:8000\""),
        "{error}"
    );
}

#[test]
fn defaults_are_the_upstream_script_values() {
    assert_eq!(DEFAULT_ENDPOINT, "http://localhost:8000/v1");
    assert_eq!(DEFAULT_MODEL_NAME, "meta-llama/Llama-3.1-8B-Instruct");
}
