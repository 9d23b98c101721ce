//! Memory and CPU limits checked as dockerd checks them (moby's
//! `verifyPlatformContainerResources` and `UpdateContainer`), in its order
//! and words, so that a limit runc would refuse, or that dockerd refuses,
//! is never stored.

use api_types::container::{ContainerUpdateRequest, HostConfig};
use serde_json::Value;

use crate::services::ServiceError;

/// dockerd's `linuxMinMemory`.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The limits dockerd checks together; 0 is "not set".
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Limits {
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub kernel_memory: i64,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
}

impl Limits {
    /// dockerd's `adaptContainerSettings`: a memory limit without a swap
    /// limit gets twice the memory as swap, stored (and shown) as such.
    pub fn default_swap(hc: &mut HostConfig) {
        if hc.memory > 0 && hc.memory_swap == 0 {
            hc.memory_swap = hc.memory.saturating_mul(2);
        }
    }

    pub fn of(hc: &HostConfig) -> Self {
        let other = |key: &str| hc.other.get(key).and_then(Value::as_i64).unwrap_or(0);
        Limits {
            memory: hc.memory,
            memory_swap: hc.memory_swap,
            memory_reservation: other("MemoryReservation"),
            kernel_memory: other("KernelMemory"),
            nano_cpus: hc.nano_cpus,
            cpu_period: other("CpuPeriod"),
            cpu_quota: other("CpuQuota"),
        }
    }

    pub fn of_update(req: &ContainerUpdateRequest) -> Self {
        Limits {
            memory: req.memory,
            memory_swap: req.memory_swap,
            memory_reservation: req.memory_reservation,
            kernel_memory: 0,
            nano_cpus: req.nano_cpus,
            cpu_period: req.cpu_period,
            cpu_quota: req.cpu_quota,
        }
    }

    /// dockerd's refusals, first one wins; `update` checks an update's own
    /// fields, where a swap limit alone is allowed. Returns its warnings.
    pub fn check(&self, update: bool) -> Result<Vec<String>, ServiceError> {
        let invalid = |text: &str| Err(ServiceError::InvalidParameter(text.to_string()));
        let mut warnings = Vec::new();
        if self.memory != 0 && self.memory < MIN_MEMORY {
            return invalid("Minimum memory limit allowed is 6MB");
        }
        if self.memory > 0 && self.memory_swap > 0 && self.memory_swap < self.memory {
            return invalid("Minimum memoryswap limit should be larger than memory limit, see usage");
        }
        if self.memory == 0 && self.memory_swap > 0 && !update {
            return invalid("You should always set the Memory limit when using Memoryswap limit, see usage");
        }
        if self.memory_reservation > 0 && self.memory_reservation < MIN_MEMORY {
            return invalid("Minimum memory reservation allowed is 6MB");
        }
        if self.memory > 0 && self.memory_reservation > 0 && self.memory < self.memory_reservation {
            return invalid("Minimum memory limit can not be less than memory reservation limit, see usage");
        }
        if self.kernel_memory > 0 {
            warnings.push("Specifying a kernel memory limit is deprecated and will be removed in a future release.".into());
            if self.kernel_memory < MIN_MEMORY {
                return invalid("Minimum kernel memory limit allowed is 6MB");
            }
        }
        if self.nano_cpus > 0 && self.cpu_period > 0 {
            return invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set");
        }
        if self.nano_cpus > 0 && self.cpu_quota > 0 {
            return invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
        }
        // dockerd counts the CPUs it may run on, as `docker info` shows them.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as i64);
        if self.nano_cpus < 0 || self.nano_cpus > cpus * 1_000_000_000 {
            return Err(ServiceError::InvalidParameter(format!(
                "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            )));
        }
        if self.cpu_period != 0 && !(1000..=1_000_000).contains(&self.cpu_period) {
            return invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
        }
        if self.cpu_quota > 0 && self.cpu_quota < 1000 {
            return invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)");
        }
        Ok(warnings)
    }

    /// dockerd's `UpdateContainer`: CPUs and a CFS period or quota each
    /// set the same cgroup files, so an update may not mix them with what
    /// the container already has (a 409).
    pub fn conflict_with(&self, current: &Limits) -> Option<&'static str> {
        let (new, cur) = (self, current);
        if new.nano_cpus > 0 && cur.cpu_period > 0 {
            return Some("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set");
        }
        if new.nano_cpus > 0 && cur.cpu_quota > 0 {
            return Some("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set");
        }
        if new.cpu_period > 0 && cur.nano_cpus > 0 {
            return Some("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set");
        }
        if new.cpu_quota > 0 && cur.nano_cpus > 0 {
            return Some("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set");
        }
        // Even over an unlimited swap (-1) or none: dockerd's rule, as is.
        if new.memory != 0 && new.memory > cur.memory_swap && new.memory_swap == 0 {
            return Some("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(limits: Limits, update: bool) -> String {
        match limits.check(update) {
            Err(ServiceError::InvalidParameter(text)) => text,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn memory_family_in_dockerd_order() {
        let mb = 1024 * 1024;
        let l = Limits { memory: 6 * mb, memory_swap: 5 * mb, ..Default::default() };
        assert!(refusal(l, false).starts_with("Minimum memoryswap limit"));
        let swap_alone = Limits { memory_swap: 10 * mb, ..Default::default() };
        assert!(refusal(swap_alone, false).starts_with("You should always set the Memory limit"));
        assert!(swap_alone.check(true).is_ok());
        assert!(Limits { memory_swap: -1, ..Default::default() }.check(false).is_ok());
        let l = Limits { memory: 10 * mb, memory_reservation: 20 * mb, ..Default::default() };
        assert!(refusal(l, true).starts_with("Minimum memory limit can not be less than memory reservation"));
        assert_eq!(refusal(Limits { memory_reservation: 1, ..Default::default() }, false), "Minimum memory reservation allowed is 6MB");
        assert_eq!(refusal(Limits { kernel_memory: 5 * mb, ..Default::default() }, false), "Minimum kernel memory limit allowed is 6MB");
        assert_eq!(Limits { kernel_memory: 10 * mb, ..Default::default() }.check(false).unwrap().len(), 1);
    }

    #[test]
    fn cpu_family() {
        let l = Limits { nano_cpus: 1_000_000_000, cpu_period: 100_000, ..Default::default() };
        assert!(refusal(l, false).contains("Nano CPUs and CPU Period"));
        let l = Limits { nano_cpus: 1_000_000_000, cpu_quota: -1, ..Default::default() };
        assert!(l.check(false).is_ok());
        assert!(refusal(Limits { nano_cpus: -1, ..Default::default() }, false).starts_with("Range of CPUs is from 0.01 to "));
        assert!(refusal(Limits { cpu_period: -1, ..Default::default() }, false).starts_with("CPU cfs period"));
        assert!(refusal(Limits { cpu_quota: 500, ..Default::default() }, false).starts_with("CPU cfs quota"));
        assert!(Limits { cpu_quota: -5, ..Default::default() }.check(false).is_ok());
    }

    #[test]
    fn update_conflicts_with_what_is_set() {
        let cur = Limits { nano_cpus: 1_000_000_000, ..Default::default() };
        let new = Limits { cpu_quota: 50_000, ..Default::default() };
        assert!(new.conflict_with(&cur).unwrap().starts_with("Conflicting options: CPU Quota cannot be updated"));
        let cur = Limits { cpu_period: 100_000, ..Default::default() };
        let new = Limits { nano_cpus: 1_000_000_000, ..Default::default() };
        assert!(new.conflict_with(&cur).unwrap().contains("as CPU Period has already been set"));
        assert!(Limits::default().conflict_with(&cur).is_none());
    }
}
