//! `docker top`: the host's `ps`, limited to the container's processes
//! (PIDs from containerd), as dockerd does it.

use api_types::container::TopResponse;

use super::record::Status;
use super::ContainerService;
use crate::backends::procps;
use crate::services::ServiceError;

impl ContainerService {
    pub async fn top(&self, name: &str, ps_args: &str) -> Result<TopResponse, ServiceError> {
        let ps_args = if ps_args.is_empty() { "-ef" } else { ps_args };
        validate_ps_args(ps_args)?;
        let entry = self.lookup(name)?;
        let record = entry.record.lock().await.clone();
        match record.state.status {
            Status::Running | Status::Paused => {}
            Status::Restarting => {
                return Err(ServiceError::Conflict(format!(
                    "Container {} is restarting, wait until the container is running",
                    record.id
                )))
            }
            _ => return Err(ServiceError::Conflict(format!("container {} is not running", record.id))),
        }
        let pids = self.containerd.task_pids(&record.id).await?;
        let args: Vec<String> = ps_args.split(' ').map(str::to_string).collect();
        let mut with_pids = args.clone();
        with_pids.push(pids_arg(&pids));
        let output = match procps::ps(&with_pids).await {
            Ok(out) => out,
            // Some ps options (such as f) cannot be combined with q.
            Err(_) => procps::ps(&args).await.map_err(|e| ServiceError::Internal(format!("ps: {e}")))?,
        };
        let list = parse_ps_output(&String::from_utf8_lossy(&output), &pids).map_err(ServiceError::Internal)?;
        self.emit(&record, "top", &[]);
        Ok(list)
    }
}

/// dockerd refuses `KEY=PID…` column renames other than `pid=`: it could not
/// find the PID column afterwards.
fn validate_ps_args(args: &str) -> Result<(), ServiceError> {
    let words: Vec<&str> = args.split_ascii_whitespace().collect();
    // As moby's `\s+([^\s]*)=\s*(PID[^\s]*)`: a word ending in `=` (or
    // holding `=`) after whitespace, whose value starts with PID.
    for (i, word) in words.iter().enumerate() {
        if i == 0 && !args.starts_with(char::is_whitespace) {
            continue;
        }
        let Some((key, value)) = word.rsplit_once('=') else { continue };
        let value = if value.is_empty() { words.get(i + 1).copied().unwrap_or_default() } else { value };
        if value.starts_with("PID") && key != "pid" {
            return Err(ServiceError::Internal(format!("specifying \"{key}={value}\" is not allowed")));
        }
    }
    Ok(())
}

/// `-q1,2,3`: ps selects exactly these PIDs.
fn pids_arg(pids: &[u32]) -> String {
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    format!("-q{}", list.join(","))
}

fn fields(line: &str) -> Vec<String> {
    line.split(['\t', '\n', '\x0c', '\r', ' ']).filter(|f| !f.is_empty()).map(str::to_string).collect()
}

/// Keep the rows whose PID is the container's (and the thread rows under
/// them, `-` in the PID column); overhanging fields join the last column.
fn parse_ps_output(output: &str, pids: &[u32]) -> Result<TopResponse, String> {
    let mut lines = output.split('\n');
    let titles = fields(lines.next().unwrap_or_default());
    let pid_index = titles.iter().position(|t| t == "PID").ok_or("Couldn't find PID field in ps output")?;
    let mut processes = Vec::new();
    let mut previous_kept = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let row = fields(line);
        let Some(pid) = row.get(pid_index) else { continue };
        let keep = if pid == "-" {
            previous_kept
        } else {
            let pid: u32 = pid.parse().map_err(|e| format!("Unexpected pid '{pid}': {e}"))?;
            previous_kept = pids.contains(&pid);
            previous_kept
        };
        if keep {
            let split = (titles.len() - 1).min(row.len());
            let mut process = row[..split].to_vec();
            process.push(row[split..].join(" "));
            processes.push(process);
        }
    }
    Ok(TopResponse { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                      root           1       0  0 01:00 ?        00:00:01 /sbin/init splash\n\
                      root        4242    4200  0 01:01 ?        00:00:00 sleep 300\n\
                      root        4243    4242  0 01:01 ?        00:00:00 sh -c echo hi there\n";

    #[test]
    fn keeps_only_container_pids_and_joins_the_command() {
        let top = parse_ps_output(PS, &[4242, 4243]).unwrap();
        assert_eq!(top.titles, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
        assert_eq!(top.processes.len(), 2);
        assert_eq!(top.processes[0][1], "4242");
        assert_eq!(top.processes[1][7], "sh -c echo hi there");
    }

    #[test]
    fn thread_rows_follow_their_process() {
        let out = "PID TID CMD\n10 - a\n- 10 -\n20 - b\n- 20 -\n";
        let top = parse_ps_output(out, &[20]).unwrap();
        assert_eq!(top.processes, vec![vec!["20", "-", "b"], vec!["-", "20", "-"]]);
    }

    #[test]
    fn needs_a_pid_column() {
        assert_eq!(parse_ps_output("USER CMD\nroot x\n", &[1]).unwrap_err(), "Couldn't find PID field in ps output");
    }

    #[test]
    fn renaming_the_pid_column_is_refused() {
        assert!(validate_ps_args("-ef").is_ok());
        assert!(validate_ps_args("-o pid=PID,comm").is_ok());
        assert!(validate_ps_args("-o pid,comm").is_ok());
        let err = validate_ps_args("-o foo=PID").unwrap_err().to_string();
        assert_eq!(err, "specifying \"foo=PID\" is not allowed");
    }

    #[test]
    fn pid_list_argument() {
        assert_eq!(pids_arg(&[1, 2, 3]), "-q1,2,3");
    }
}
