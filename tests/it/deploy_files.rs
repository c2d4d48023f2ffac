//! The deployment files in deploy/ are parsed and checked for the essentials: non-root, probes on
//! real routes, two replicas on PostgreSQL behind the proxy, and every IYS_RELAY__* variable they
//! set maps to a real configuration key (the real binary loads them with figment's Env provider,
//! where `deny_unknown_fields` refuses a misspelt key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

fn yaml_docs(path: &str) -> Vec<Value> {
    let text = read(path);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let mut v: serde_yaml_ng::Value = serde::Deserialize::deserialize(d)
                .unwrap_or_else(|e| panic!("deploy/{path} is not valid YAML: {e}"));
            // Compose files use `<<: *anchor` merge keys.
            v.apply_merge().expect("merge keys");
            serde_json::to_value(v).expect("YAML as JSON")
        })
        .collect()
}

fn k8s(kind: &str) -> Value {
    let file = match kind {
        "Deployment" => "k8s/deployment.yaml",
        "Service" => "k8s/service.yaml",
        "Secret" => "k8s/secret.yaml",
        "ConfigMap" => "k8s/configmap.yaml",
        other => panic!("no file for {other}"),
    };
    yaml_docs(file)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("{file} has no {kind}"))
}

/// Runs `iys-relay [--config file] check-config` with exactly `env` (nothing inherited).
fn check_config(env: &BTreeMap<String, String>, config_file: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iys-relay"));
    cmd.env_clear().current_dir(dir.path()).envs(env);
    if let Some(text) = config_file {
        let p = dir.path().join("config.toml");
        std::fs::write(&p, text).unwrap();
        cmd.arg("--config").arg(p);
    }
    let out = cmd.arg("check-config").output().expect("run iys-relay");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "check-config refused {env:?}:\n{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn relay_vars(map: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    map.iter()
        .filter(|(k, _)| k.starts_with("IYS_RELAY__"))
        .map(|(k, v)| (k.clone(), v.as_str().expect("string env value").to_string()))
        .collect()
}

// ---- Dockerfile ----

#[test]
fn dockerfile_is_multi_stage_non_root_with_healthcheck() {
    let text = read("Dockerfile");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage build expected: {froms:?}");
    assert!(froms[0].contains("rust:"), "{froms:?}");
    assert!(froms.last().unwrap().contains("-slim"), "{froms:?}");
    // The last USER before the entrypoint is a non-root numeric uid.
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    let uid = user.split(':').next().unwrap();
    assert!(uid.parse::<u32>().is_ok_and(|u| u > 0), "USER {user}");
    let hc = text
        .split("HEALTHCHECK")
        .nth(1)
        .expect("HEALTHCHECK instruction");
    assert!(hc.contains("/healthz"), "{hc}");
    // Only CA certificates are installed in the runtime stage.
    let runtime = text.rsplit("FROM ").next().unwrap();
    let installed: Vec<&str> = runtime
        .lines()
        .filter_map(|l| l.split("--no-install-recommends").nth(1))
        .flat_map(|rest| {
            rest.split_whitespace()
                .take_while(|w| *w != "\\" && *w != "&&")
        })
        .collect();
    assert_eq!(installed, ["ca-certificates"]);
    assert!(runtime.contains("COPY --from=builder /out/iys-relay /usr/local/bin/iys-relay"));
}

#[test]
fn dockerfile_env_maps_to_config_keys() {
    let text = read("Dockerfile").replace("\\\n", " ");
    let env: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .flat_map(str::split_whitespace)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(env.contains_key("IYS_RELAY__SERVER__LISTEN"), "{env:?}");
    let shown = check_config(&env, None);
    assert!(shown.contains("listen = \"0.0.0.0:8080\""), "{shown}");
    assert!(
        shown.contains("sqlite:///var/lib/iys-relay/iys-relay.db"),
        "{shown}"
    );
}

// ---- compose + proxy ----

/// Compose-style interpolation with values from deploy/env.example: `${V}`, `${V:-d}`, `${V:?m}`.
fn interpolate(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let expr = &rest[start + 2..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr.split(":?").next().unwrap(), None),
        };
        let value = vars
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .or(default.map(str::to_string))
            .unwrap_or_else(|| panic!("{name} has neither a value in env.example nor a default"));
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn compose_runs_two_replicas_on_postgres_behind_the_proxy() {
    let doc = &yaml_docs("compose.yaml")[0];
    let services = doc["services"].as_object().expect("services");
    let pg = &services["postgres"];
    assert!(pg["image"].as_str().unwrap().starts_with("postgres:15"));
    assert!(pg["healthcheck"]["test"].is_array());
    assert!(
        pg["volumes"][0]
            .as_str()
            .unwrap()
            .ends_with(":/var/lib/postgresql/data")
    );

    let example: BTreeMap<String, String> = read("env.example")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect();
    let replicas: Vec<&String> = services
        .keys()
        .filter(|k| k.starts_with("iys-relay-"))
        .collect();
    assert_eq!(replicas.len(), 2, "{replicas:?}");
    let nginx = read("nginx.conf");
    for name in &replicas {
        let svc = &services[name.as_str()];
        assert_eq!(
            svc["depends_on"]["postgres"]["condition"],
            "service_healthy"
        );
        let env: BTreeMap<String, String> = relay_vars(svc["environment"].as_object().unwrap())
            .into_iter()
            .map(|(k, v)| (k, interpolate(&v, &example)))
            .collect();
        assert!(env["IYS_RELAY__DATABASE__URL"].starts_with("postgres://"));
        let shown = check_config(&env, None);
        assert!(shown.contains("trusted_proxy = true"), "{shown}");
        assert!(
            nginx.contains(&format!("server {name}:8080")),
            "nginx upstream lacks {name}"
        );
    }
    for prefix in ["/webhooks/", "/v1/", "/r/", "/iys/"] {
        assert!(
            nginx.contains(&format!("location {prefix} ")),
            "nginx does not route {prefix}"
        );
    }
    // The relay trusts the LAST X-Forwarded-For entry; the proxy sets it to the peer it saw.
    assert!(nginx.contains("proxy_set_header X-Forwarded-For $remote_addr;"));
    assert!(!nginx.contains("$proxy_add_x_forwarded_for"));
    let proxy = &services["proxy"];
    assert!(
        proxy["volumes"][0]
            .as_str()
            .unwrap()
            .starts_with("./nginx.conf:")
    );
}

// ---- systemd ----

#[test]
fn systemd_unit_is_hardened_and_its_env_is_valid() {
    let text = read("iys-relay.service");
    let mut settings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') || line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').expect("key=value");
        settings
            .entry(k.to_string())
            .or_default()
            .push(v.to_string());
    }
    let one = |k: &str| settings.get(k).map(|v| v[0].as_str());
    for (k, v) in [
        ("Type", "exec"),
        ("Restart", "on-failure"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "iys-relay"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
    ] {
        assert_eq!(one(k), Some(v), "{k}");
    }
    assert!(one("RestrictAddressFamilies").unwrap().contains("AF_INET"));
    assert!(one("ExecStart").unwrap().ends_with(" serve"));
    // The SQLite file lives in the state directory, the only writable place.
    let env: BTreeMap<String, String> = settings["Environment"]
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    assert!(env["IYS_RELAY__DATABASE__URL"].starts_with("sqlite:///var/lib/iys-relay/"));
    check_config(&env, None);
}

// ---- Kubernetes ----

#[test]
fn k8s_deployment_is_non_root_with_two_replicas_and_probes() {
    let d = k8s("Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["securityContext"]["runAsUser"].as_u64().unwrap() > 0);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "iys-relay");
    let svc = k8s("Service");
    assert_eq!(
        svc["spec"]["selector"],
        d["spec"]["template"]["metadata"]["labels"]
    );
}

#[test]
fn k8s_secret_and_configmap_load_as_a_valid_live_config() {
    let secret = k8s("Secret");
    let env = relay_vars(secret["stringData"].as_object().unwrap());
    for key in [
        "IYS_RELAY__DATABASE__URL",
        "IYS_RELAY__IYS__PASSWORD",
        "IYS_RELAY__API__TOKENS",
        "IYS_RELAY__TWILIO__AUTH_TOKENS",
    ] {
        assert!(env.contains_key(key), "Secret lacks {key}");
    }
    let cm = k8s("ConfigMap");
    let file = cm["data"]["config.toml"].as_str().unwrap();
    let d = k8s("Deployment");
    let args = d["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    assert_eq!(args[1], "/etc/iys-relay/config.toml");
    let shown = check_config(&env, Some(file));
    assert!(shown.contains("mode = \"live\""), "{shown}");
    // Secrets stay redacted in the effective config.
    assert!(!shown.contains("CHANGE-ME-at-least-16-chars"), "{shown}");
}

#[test]
fn a_misspelt_variable_is_refused() {
    // The check above would be worthless if figment ignored unknown keys.
    let out = Command::new(env!("CARGO_BIN_EXE_iys-relay"))
        .env_clear()
        .env("IYS_RELAY__SERVER__LISTEN_ADDR", "0.0.0.0:8080")
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

// ---- the probe and proxy paths are real routes ----

#[tokio::test]
async fn probe_and_proxied_paths_are_routes() {
    let app = crate::common::spawn_app(
        crate::common::sqlite().await,
        "",
        crate::common::at("2026-11-23T10:00:00Z"),
    )
    .await;
    let d = k8s("Deployment");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    for probe in ["readinessProbe", "livenessProbe"] {
        let path = c[probe]["httpGet"]["path"].as_str().unwrap();
        let r = app.get(path).await;
        assert_eq!(r.status(), 200, "{probe} {path}");
    }
    // Unauthenticated/unsigned requests are refused, but not as "no such route".
    let r = app
        .http
        .post(format!("{}/webhooks/twilio/sms", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app.get("/v1/consents/+905321234567?type=MESAJ").await;
    assert_eq!(r.status(), 401);
}
