//! tmpfs mounts: `HostConfig.Tmpfs` (`--tmpfs /run:size=64m`) and `--mount
//! type=tmpfs`, with dockerd's defaults (`noexec,nosuid,nodev`, private
//! propagation) merged with the user's options, later ones winning.

use serde_json::{json, Value};

use api_types::mount::Mount;

/// Flags and their opposites; a later one cancels an earlier opposite.
const FLAG_PAIRS: &[(&str, &str)] = &[
    ("exec", "noexec"),
    ("suid", "nosuid"),
    ("dev", "nodev"),
    ("ro", "rw"),
    ("atime", "noatime"),
    ("diratime", "nodiratime"),
    ("relatime", "norelatime"),
    ("strictatime", "nostrictatime"),
    ("sync", "async"),
    ("mand", "nomand"),
];

fn opposite(flag: &str) -> Option<&'static str> {
    FLAG_PAIRS.iter().find_map(|(a, b)| if *a == flag { Some(*b) } else if *b == flag { Some(*a) } else { None })
}

/// dockerd's `MergeTmpfsOptions`: the last of a flag pair wins, the last
/// `key=value` for a key wins, order of first appearance kept.
pub fn merge_options(options: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for opt in options.iter().filter(|o| !o.is_empty()) {
        if let Some((key, _)) = opt.split_once('=') {
            out.retain(|o| o.split_once('=').map(|(k, _)| k) != Some(key));
        } else if let Some(opp) = opposite(opt) {
            out.retain(|o| o != opp && o != opt);
        } else {
            out.retain(|o| o != opt);
        }
        out.push(opt.clone());
    }
    out
}

/// `size=` and `mode=` for a `--mount type=tmpfs`, as dockerd writes them.
fn mount_data(m: &Mount) -> Vec<String> {
    let mut data = Vec::new();
    if let Some(t) = &m.tmpfs_options {
        if t.size_bytes > 0 {
            let size = t.size_bytes;
            data.push(match size {
                s if s % (1 << 30) == 0 => format!("size={}g", s >> 30),
                s if s % (1 << 20) == 0 => format!("size={}m", s >> 20),
                s if s % (1 << 10) == 0 => format!("size={}k", s >> 10),
                s => format!("size={s}"),
            });
        }
        if t.mode != 0 {
            data.push(format!("mode={:o}", t.mode & 0o7777));
        }
    }
    if m.read_only {
        data.push("ro".into());
    }
    data
}

fn oci(destination: &str, data: Vec<String>) -> Value {
    let mut options: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"].iter().map(|s| s.to_string()).collect();
    options.extend(data);
    json!({"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": merge_options(&options)})
}

/// The OCI mount for a `--tmpfs DEST:OPTS` entry.
pub fn from_tmpfs_entry(destination: &str, options: &str) -> Value {
    oci(destination, options.split(',').map(str::to_string).collect())
}

/// The OCI mount for a `--mount type=tmpfs`.
pub fn from_mount(m: &Mount) -> Value {
    oci(&m.target, mount_data(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_options_win() {
        let merged = merge_options(&["noexec", "nosuid", "size=1m", "exec", "size=2m"].map(String::from));
        assert_eq!(merged, ["nosuid", "exec", "size=2m"]);
        assert_eq!(from_tmpfs_entry("/run", "size=64m")["options"], json!(["noexec", "nosuid", "nodev", "rprivate", "size=64m"]));
    }

    #[test]
    fn mount_sizes_and_modes_as_dockerd() {
        let m: Mount = serde_json::from_value(json!({"Type": "tmpfs", "Target": "/t", "ReadOnly": true,
            "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 960}}))
        .unwrap();
        assert_eq!(from_mount(&m)["options"], json!(["noexec", "nosuid", "nodev", "rprivate", "size=64m", "mode=1700", "ro"]));
    }
}
