//! The environment dockerd gives a container's process and its execs
//! (moby's `CreateDaemonEnvironment` and `ReplaceOrAppendEnvValues`): a
//! default `PATH`, `HOSTNAME`, `TERM=xterm` with a TTY and the link
//! variables, then the configured variables, each replacing a same-named
//! one in place or appended; a name without `=` removes it. runc adds
//! `HOME` when it is missing.

/// dockerd's default `PATH`, for a process whose image and config set
/// none (`Config.Env` does not get it).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process environment: the daemon's defaults, `links`, then `own`.
pub(super) fn process_env(hostname: &str, tty: bool, links: Vec<String>, own: &[String]) -> Vec<String> {
    let mut env = vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    if tty {
        env.push("TERM=xterm".into());
    }
    env.extend(links);
    replace_or_append(env, own)
}

/// `overrides` over `defaults`: a `NAME=value` replaces `defaults`'s NAME
/// in place or is appended; a `NAME` alone removes `defaults`'s NAME.
pub(super) fn replace_or_append(mut defaults: Vec<String>, overrides: &[String]) -> Vec<String> {
    let name = |v: &str| v.split('=').next().unwrap_or_default().to_string();
    let known: std::collections::HashMap<String, usize> =
        defaults.iter().enumerate().map(|(i, v)| (name(v), i)).collect();
    let mut removed = vec![false; defaults.len()];
    for value in overrides {
        match (value.contains('='), known.get(&name(value))) {
            (false, Some(&i)) => removed[i] = true,
            (false, None) => {}
            (true, Some(&i)) => {
                defaults[i] = value.clone();
                removed[i] = false;
            }
            (true, None) => defaults.push(value.clone()),
        }
    }
    let mut i = 0;
    defaults.retain(|_| {
        i += 1;
        !removed.get(i - 1).copied().unwrap_or(false)
    });
    defaults
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_daemon_defaults_come_first_and_the_config_wins() {
        let env = process_env("abc", true, strings(&["DB_PORT=tcp://x"]), &strings(&[DEFAULT_PATH, "A=1"]));
        assert_eq!(env, strings(&[DEFAULT_PATH, "HOSTNAME=abc", "TERM=xterm", "DB_PORT=tcp://x", "A=1"]));
        let env = process_env("abc", false, vec![], &strings(&["PATH=/x", "HOSTNAME=mine", "TERM=dumb"]));
        assert_eq!(env, strings(&["PATH=/x", "HOSTNAME=mine", "TERM=dumb"]));
    }

    #[test]
    fn a_name_alone_removes_it() {
        let env = replace_or_append(strings(&["A=1", "B=2", "C=3"]), &strings(&["B", "D", "C=4", "E=5"]));
        assert_eq!(env, strings(&["A=1", "C=4", "E=5"]));
    }
}
