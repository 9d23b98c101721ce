//! What `-v`, `-p`, `--device-cgroup-rule`, sizes, signals, durations,
//! `until`, `-H`, `--tmpfs`, `--mount`, `--health-*` and `--log-opt` hand
//! the daemon.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = berthd::backends::oci_spec::binds::parse_bind(text);
    let _ = berthd::backends::oci_spec::devices::parse_cgroup_rule(text);
    let _ = berthd::config::container_defaults::parse_size(text);
    let _ = berthd::services::containers::parse_signal(text);
    let _ = berthd::services::dockerfile::parse_duration(text);
    let _ = berthd::services::images::parse_until(text);
    let _ = berthd::config::hosts::parse(text, false);
    let _ = berthd::config::hosts::parse(text, true);
    let _ = berthd::backends::network::ipam::Subnet::parse(text);
    let _ = berthd::backends::oci_spec::security_opts(&[text.to_string()]);
    // `--tmpfs DEST:OPTIONS`.
    let (dest, opts) = text.split_once(':').unwrap_or((text, ""));
    let _ = berthd::backends::oci_spec::tmpfs::from_tmpfs_entry(dest, opts);
    // A create body's HostConfig (`--mount` JSON, binds, tmpfs) and Config
    // (`--health-*` durations), as the create handler deserialises them.
    if let Ok(hc) = serde_json::from_str::<api_types::container::HostConfig>(text) {
        let _ = berthd::services::containers::validate_mounts(&hc);
        for m in hc.mounts.iter().flatten().filter(|m| m.kind == "tmpfs") {
            let _ = berthd::backends::oci_spec::tmpfs::from_mount(m);
        }
        for (d, o) in hc.tmpfs.iter().flatten() {
            let _ = berthd::backends::oci_spec::tmpfs::from_tmpfs_entry(d, o);
        }
    }
    if let Ok(config) = serde_json::from_str::<api_types::container::ContainerConfig>(text) {
        let _ = berthd::services::containers::validate_health(config.healthcheck.as_ref());
    }
    // `--log-opt key=value`, one a line (short inputs only: the regexp
    // options compile what they are given).
    if text.len() <= 4096 {
        let opts: std::collections::BTreeMap<String, String> =
            text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for driver in ["json-file", "local"] {
            let _ = berthd::backends::logging::driver::LogDriver::parse(driver, &opts);
        }
        let (labels, env) = (std::collections::BTreeMap::from([("a".to_string(), "1".to_string())]), ["A=1".to_string()]);
        let info = berthd::backends::logging::attrs::LogInfo {
            id: "7497c943fbec0123456789",
            name: "c",
            image_name: "busybox",
            image_id: "sha256:119d2752236d",
            command: vec!["sh", "-c"],
            labels: &labels,
            env: &env,
        };
        let _ = berthd::backends::logging::attrs::extra_attributes(&opts, &info);
    }
    // `-p`: PortBindings and ExposedPorts as JSON.
    if let Ok(serde_json::Value::Object(hc)) = serde_json::from_str::<serde_json::Value>(text) {
        let hc: std::collections::BTreeMap<String, serde_json::Value> = hc.into_iter().collect();
        let exposed = hc.get("ExposedPorts").and_then(|v| serde_json::from_value(v.clone()).ok());
        let _ = berthd::services::networks::ports::requests(&hc, exposed.as_ref());
    }
});
