//! A mutex whose every mutable access bumps a shared version, so a reader
//! can tell from one number whether anything it rendered may have changed
//! (the cached container listing). Reads through the guard do not bump.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard, TryLockError};

/// The shared counter; cloned into every value it guards.
#[derive(Clone, Default)]
pub struct Version(Arc<AtomicU64>);

impl Version {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct Versioned<T> {
    inner: Mutex<T>,
    version: Version,
}

impl<T> Versioned<T> {
    pub fn new(value: T, version: Version) -> Self {
        Self { inner: Mutex::new(value), version }
    }

    pub async fn lock(&self) -> Guard<'_, T> {
        Guard { inner: self.inner.lock().await, version: &self.version }
    }

    pub fn try_lock(&self) -> Result<Guard<'_, T>, TryLockError> {
        Ok(Guard { inner: self.inner.try_lock()?, version: &self.version })
    }
}

pub struct Guard<'a, T> {
    inner: MutexGuard<'a, T>,
    version: &'a Version,
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for Guard<'_, T> {
    /// Bumped before the change is made, under the lock: a reader that
    /// sees the new version and then locks sees the change.
    fn deref_mut(&mut self) -> &mut T {
        self.version.bump();
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_mutable_access_bumps() {
        let version = Version::default();
        let v = Versioned::new(1, version.clone());
        let g = v.lock().await;
        assert_eq!(*g + 1, 2);
        drop(g);
        assert_eq!(version.get(), 0);
        *v.lock().await += 1;
        assert_eq!(version.get(), 1);
        assert_eq!(*v.lock().await, 2);
    }
}
